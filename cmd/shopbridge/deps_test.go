package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReleaseLinksNoTesting: what only tests use never reaches the release
// binary (the testing package registers its flags and pulls in more).
func TestReleaseLinksNoTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list -deps: %v (no Go toolchain here?)", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasPrefix(pkg, "testing/") || (strings.Contains(pkg, "/internal/") && strings.HasSuffix(pkg, "test")) {
			t.Errorf("the release binary links %s", pkg)
		}
	}
}
