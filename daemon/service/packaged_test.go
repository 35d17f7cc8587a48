package service

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite packaging/systemd/shopbridge.service from the unit template")

// TestPackagedUnit keeps the unit the .deb and .rpm ship equal to the one
// "shopbridge install" writes for /usr/bin/shopbridge.
func TestPackagedUnit(t *testing.T) {
	path := filepath.Join("..", "..", "packaging", "systemd", Name+".service")
	want := RenderUnit("/usr/bin/shopbridge", []string{"run", ServiceFlag}, "")
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s differs from the unit template; regenerate it with: go test ./daemon/service -run TestPackagedUnit -update", path)
	}
}
