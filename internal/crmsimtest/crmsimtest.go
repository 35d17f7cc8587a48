// Package crmsimtest starts the upstream simulator for tests. It lives apart
// from crmsim so that the testing package never reaches the release binary.
package crmsimtest

import (
	"testing"

	"github.com/shopbridge/shopbridge/crmsim"
)

// MustOpen opens a simulator for a test and closes it when the test ends.
func MustOpen(tb testing.TB, cfg crmsim.Config) *crmsim.Server {
	tb.Helper()
	s, err := crmsim.Open(cfg)
	if err != nil {
		tb.Fatalf("crmsim: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
