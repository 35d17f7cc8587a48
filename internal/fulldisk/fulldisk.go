// Package fulldisk gives tests a real file system that fills up: a small
// tmpfs mounted for the test (root only), and a filler file that takes
// every free byte of it.
package fulldisk

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size (as mount takes it: "4m") on a new
// directory and unmounts it on cleanup. It skips the test, saying why,
// when not root on Linux or when mount fails.
func Mount(tb testing.TB, size string) string {
	tb.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		tb.Skip("skipped: the full-disk test mounts a tmpfs, which needs root on Linux (CI runs it as root)")
	}
	dir := tb.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "shopbridge-fulldisk", dir).CombinedOutput(); err != nil {
		tb.Skipf("skipped: cannot mount a tmpfs (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			tb.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Fill writes a file in dir until the file system is full and returns its
// path; removing it gives the space back.
func Fill(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = 0xa5
	}
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	// A last partial block: smaller writes until not even one byte fits.
	for n := 2048; n > 0; n /= 2 {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return path
}
