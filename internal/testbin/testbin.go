// Package testbin builds the real shopbridge binary for end-to-end tests
// that run it as a separate process (daemon, sync, discovery). It exists so
// those packages share one way of building it: internal/ because only the
// module's own tests use it.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build compiles cmd/shopbridge (as a release is built: CGO off) into a new
// temporary directory and returns the binary's path and a cleanup that
// removes the directory. buildFlags go to go build (e.g. "-tags",
// "hanginject" for a test build).
func Build(buildFlags ...string) (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "shopbridge-e2e-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, "shopbridge")
	args := append(append([]string{"build"}, buildFlags...), "-o", path, "github.com/shopbridge/shopbridge/cmd/shopbridge")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build cmd/shopbridge: %v\n%s", err, out)
	}
	return path, cleanup, nil
}

// Main is the TestMain of an end-to-end suite: it builds the binary into
// *path, runs the tests and exits with their code, removing the binary.
func Main(m *testing.M, path *string) {
	p, cleanup, err := Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*path = p
	code := m.Run()
	cleanup()
	os.Exit(code)
}
