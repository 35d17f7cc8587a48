//go:build linux

// Package loopfs gives tests a real disk that fails on cue: an ext4 file
// system on a loop device over an image file in the test's temporary
// directory. Limit shrinks the device under the mounted file system (the
// loop device's size limit), so that every read and write past the new end
// fails with EIO, as on a disk that dies; Unlimit gives the blocks back,
// unchanged. TriggerError makes ext4 record an error, which remounts a file
// system mounted with errors=remount-ro read-only (EROFS). Device-mapper
// (dm-error, dm-flakey) would do the same, but is not in every kernel (not
// in this project's CI VMs): a loop device is. Root only; tests skip, saying
// why, where it cannot run. internal/ because only the module's tests use it.
package loopfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// FS is a mounted ext4 file system on a loop device.
type FS struct {
	Dir   string // where it is mounted
	Dev   string // /dev/loopN
	Image string // the backing file
	opts  string
	tb    testing.TB
}

// Mount makes an ext4 file system of size bytes and mounts it with opts
// (as mount -o takes them, "" for none).
func Mount(tb testing.TB, size int64, opts string) *FS {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipped: the failing-disk test needs root for a loop device and mount (CI runs it as root)")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("skipped: %s is not installed (packaging/apt-packages.txt: mount, e2fsprogs)", tool)
		}
	}
	tmp := tb.TempDir()
	fs := &FS{Dir: filepath.Join(tmp, "mnt"), Image: filepath.Join(tmp, "disk.img"), opts: opts, tb: tb}
	if err := os.Mkdir(fs.Dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(fs.Image, 0); err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	f, err := os.Create(fs.Image)
	if err != nil {
		tb.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	out, err := exec.Command("losetup", "--find", "--show", fs.Image).CombinedOutput()
	if err != nil {
		tb.Skipf("skipped: no loop device (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	fs.Dev = strings.TrimSpace(string(out))
	tb.Cleanup(func() {
		fs.Unlimit()
		exec.Command("umount", fs.Dir).Run()
		if out, err := exec.Command("losetup", "-d", fs.Dev).CombinedOutput(); err != nil {
			tb.Errorf("losetup -d %s: %v: %s", fs.Dev, err, out)
		}
	})
	fs.run("mkfs.ext4", "-q", "-F", fs.Dev)
	fs.mount()
	return fs
}

func (fs *FS) run(name string, args ...string) {
	fs.tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		fs.tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func (fs *FS) mount() {
	fs.tb.Helper()
	args := []string{"-t", "ext4"}
	if fs.opts != "" {
		args = append(args, "-o", fs.opts)
	}
	fs.run("mount", append(args, fs.Dev, fs.Dir)...)
}

// Limit makes the device n bytes long: what lies beyond fails with EIO.
func (fs *FS) Limit(n uint64) {
	fs.tb.Helper()
	if err := fs.setLimit(n); err != nil {
		fs.tb.Fatalf("limit %s to %d bytes: %v", fs.Dev, n, err)
	}
}

// Unlimit gives the device its whole image back.
func (fs *FS) Unlimit() error { return fs.setLimit(0) }

func (fs *FS) setLimit(n uint64) error {
	f, err := os.OpenFile(fs.Dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		return err
	}
	info.Sizelimit = n
	if err := unix.IoctlLoopSetStatus64(int(f.Fd()), info); err != nil {
		return err
	}
	return unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0)
}

// TriggerError makes ext4 record an error on the file system, as when it
// meets damaged metadata; with errors=remount-ro it goes read-only.
func (fs *FS) TriggerError() {
	fs.tb.Helper()
	p := filepath.Join("/sys/fs/ext4", filepath.Base(fs.Dev), "trigger_fs_error")
	if err := os.WriteFile(p, []byte("shopbridge test: disk error\n"), 0o200); err != nil {
		fs.tb.Skipf("skipped: cannot trigger an ext4 error (%v)", err)
	}
}

// ReadOnly reports whether the file system refuses writes as read-only
// now. It tries one (a new file): since Linux 6.13 ext4 marks itself
// read-only after an error without setting the flag statfs reports.
func (fs *FS) ReadOnly() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(fs.Dir, &st); err == nil && st.Flags&unix.ST_RDONLY != 0 {
		return true
	}
	p := filepath.Join(fs.Dir, ".loopfs-probe")
	err := os.WriteFile(p, []byte("x"), 0o600)
	os.Remove(p)
	return errors.Is(err, unix.EROFS)
}

// Repair unmounts, checks and repairs (e2fsck -fy) and mounts the file
// system again, with the whole device: as an installer does after a
// failing disk came back.
func (fs *FS) Repair() {
	fs.tb.Helper()
	if err := fs.Unlimit(); err != nil {
		fs.tb.Fatal(err)
	}
	fs.run("umount", fs.Dir)
	// e2fsck exits 1 or 2 when it fixed something: not a failure here.
	if out, err := exec.Command("e2fsck", "-fy", fs.Dev).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 2 {
			fs.tb.Fatalf("e2fsck %s: %v: %s", fs.Dev, err, out)
		}
	}
	fs.mount()
}

// DropCache asks the kernel to forget the cached pages of the file at path
// that no process maps, so that the next read goes to the device.
func DropCache(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		tb.Fatal(fmt.Errorf("fadvise %s: %w", path, err))
	}
}
