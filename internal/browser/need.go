package browser

import (
	"os"
	"testing"
)

// Need returns the chromium a browser test runs, or skips the test when
// there is none, failing it instead under SHOPBRIDGE_STRICT=1 (CI, where
// a missing chromium is a broken setup, not a reason to skip).
func Need(tb testing.TB) string {
	tb.Helper()
	path := Path()
	if path == "" {
		if os.Getenv("SHOPBRIDGE_STRICT") == "1" {
			tb.Fatal("browser test: chromium not found and SHOPBRIDGE_STRICT=1 (apt-get install -y chromium)")
		}
		tb.Skip("browser test skipped: no chromium on PATH (apt-get install -y chromium, or set SHOPBRIDGE_CHROMIUM)")
	}
	return path
}
