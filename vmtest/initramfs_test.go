package vmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitramfs lists the archive with GNU cpio, which reads the format
// as the kernel does: every entry, its type, size and contents.
func TestInitramfs(t *testing.T) {
	cpio, err := exec.LookPath("cpio")
	need(t, err == nil, "needs cpio to read the archive back (apt-get install cpio)")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o644)
	fs := NewInitramfs()
	fs.AddFile("bin/tool", src, 0o755)
	fs.AddData("/init", []byte("odd length"), 0o755)
	fs.AddData("lib/modules/x.ko", nil, 0o644)
	arc := filepath.Join(dir, "initrd.cpio")
	if err := fs.WriteFile(arc); err != nil {
		t.Fatal(err)
	}
	list := exec.Command(cpio, "-itv", "--quiet", "-F", arc)
	out, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -it: %v\n%s", err, out)
	}
	want := map[string]string{ // name -> mode and size as cpio -tv prints them
		"bin": "drwxr-xr-x", "bin/tool": "-rwxr-xr-x 18", "init": "-rwxr-xr-x 10",
		"dev/console": "crw-------", "lib/modules/x.ko": "-rw-r--r-- 0", "data": "drwxr-xr-x",
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for name, w := range want {
		found := false
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) > 0 && f[len(f)-1] == name {
				found = true
				mode := strings.Fields(w)
				if f[0] != mode[0] || (len(mode) > 1 && !strings.Contains(l, " "+mode[1]+" ")) {
					t.Errorf("%s: cpio lists %q, want %s", name, l, w)
				}
			}
		}
		if !found {
			t.Errorf("%s missing from the archive:\n%s", name, out)
		}
	}
	ext := filepath.Join(dir, "x")
	os.Mkdir(ext, 0o755)
	unpack := exec.Command(cpio, "-id", "--quiet", "--no-absolute-filenames", "-F", arc, "bin/tool", "init")
	unpack.Dir = ext
	if out, err := unpack.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(ext, "bin/tool")); string(b) != "#!/bin/sh\necho hi\n" {
		t.Errorf("bin/tool unpacked as %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(ext, "init")); string(b) != "odd length" {
		t.Errorf("init unpacked as %q", b)
	}
	// A file whose directory is not in the archive is an error, not a
	// guest that cannot boot.
	bad := NewInitramfs()
	bad.AddData("etc/x", nil, 0o644)
	if err := bad.WriteFile(filepath.Join(dir, "bad.cpio")); err == nil || !strings.Contains(err.Error(), "etc") {
		t.Errorf("a file in a missing directory: err = %v", err)
	}
}
