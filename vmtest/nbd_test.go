package vmtest

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newImage(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	return img
}

// sectorsOf says, per sector of b, which single byte value fills it, or -1
// for a mixture.
func sectorsOf(b []byte) []int {
	var out []int
	for s := 0; s < len(b); s += SectorSize {
		sec, v := b[s:s+SectorSize], int(b[s])
		if bytes.Count(sec, sec[:1]) != SectorSize {
			v = -1
		}
		out = append(out, v)
	}
	return out
}

// TestDiskCache: what the guest reads is what it wrote; the image gets it
// only at a flush; a cut keeps or loses each unflushed sector whole.
func TestDiskCache(t *testing.T) {
	img := newImage(t, 64<<10)
	d, err := ServeDisk(img, filepath.Join(t.TempDir(), "nbd.sock"), 7, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// No machine is connected: the test calls the disk's internals under
	// its lock as the NBD server does.
	func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if err := d.writeAt(bytes.Repeat([]byte{0xaa}, 32<<10), 0); err != nil {
			t.Fatal(err)
		}
		// A write across a sector boundary, not aligned to either.
		if err := d.writeAt([]byte{1, 2, 3}, 511); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1024)
		if err := d.readAt(got, 0); err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte{0xaa}, 1024)
		copy(want[511:], []byte{1, 2, 3})
		if !bytes.Equal(got, want) {
			t.Fatalf("read back %x..., want %x...", got[505:520], want[505:520])
		}
		// Only the two sectors written twice may have reached the image, in
		// their first version, as a disk may write out its cache early.
		if b, _ := os.ReadFile(img); bytes.Count(b[1024:], []byte{0}) != len(b)-1024 || bytes.Count(b[:1024], []byte{0xaa})/SectorSize != d.stats.EarlyOld {
			t.Fatalf("unflushed writes reached the image (early writes counted: %d)", d.stats.EarlyOld)
		}
		if err := d.flushLocked(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(img); !bytes.Equal(b[:1024], want) || bytes.Count(b[:32<<10], []byte{0xaa}) != 32<<10-3 {
			t.Fatal("a flush did not put the writes in the image")
		}

		if err := d.writeAt(bytes.Repeat([]byte{0xbb}, 32<<10), 32<<10); err != nil {
			t.Fatal(err)
		}
	}()
	kept, lost, err := d.Cut()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(img)
	k, l := 0, 0
	for i, v := range sectorsOf(b[32<<10:]) {
		switch v {
		case 0xbb:
			k++
		case 0:
			l++
		default:
			t.Fatalf("sector %d after the cut is neither the old nor the new content (%d)", 64+i, v)
		}
	}
	if k != kept || l != lost || k+l != 64 || k == 0 || l == 0 {
		t.Fatalf("cut: image has %d new and %d old sectors; Cut said kept %d lost %d (want both, 64 in all)", k, l, kept, lost)
	}
	if st := d.Stats(); st.Dirty != 0 || st.CutKept != kept || st.CutLost != lost {
		t.Errorf("stats after the cut: %+v", st)
	}
}

// TestDiskNBD speaks to the disk with QEMU's own NBD client (qemu-io):
// reads see unflushed writes, a flush and a clean close reach the image,
// and a client killed before flushing leaves the choice to Cut.
func TestDiskNBD(t *testing.T) {
	qemuIO, err := exec.LookPath("qemu-io")
	need(t, err == nil, "needs qemu-io (apt-get install qemu-utils)")
	img := newImage(t, 1<<20)
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	d, err := ServeDisk(img, sock, 11, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	url := "nbd+unix:///vda?socket=" + sock
	out, err := exec.Command(qemuIO, "-f", "raw", "-t", "writeback",
		"-c", "write -P 0xaa 0 64k", "-c", "flush", "-c", "write -P 0xbb 64k 64k",
		"-c", "read -P 0xbb 64k 64k", "-c", "read -P 0xaa 0 64k", url).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("failed")) {
		t.Fatalf("qemu-io: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(img)
	if bytes.Count(b[:64<<10], []byte{0xaa}) != 64<<10 || bytes.Count(b[64<<10:128<<10], []byte{0xbb}) != 64<<10 {
		t.Fatal("after a flush and a clean close the image lacks the writes")
	}
	if st := d.Stats(); st.Flushes == 0 || st.Writes < 2 || st.Reads < 2 {
		t.Errorf("stats %+v: want flushes, writes and reads", st)
	}

	// Now a machine that dies before it flushes.
	cmd := exec.Command(qemuIO, "-f", "raw", "-t", "writeback", url)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "write -P 0xcc 0 64k\n")
	wrote := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "wrote 65536/65536") {
				wrote <- true
			}
		}
	}()
	select {
	case <-wrote:
	case <-time.After(30 * time.Second):
		t.Fatal("qemu-io did not write")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	kept, lost, err := d.Cut()
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(img)
	k, l := 0, 0
	for i, v := range sectorsOf(b[:64<<10]) {
		switch v {
		case 0xcc:
			k++
		case 0xaa:
			l++
		default:
			t.Fatalf("sector %d after the cut is neither the old nor the new content", i)
		}
	}
	if k != kept || l != lost || k == 0 || l == 0 {
		t.Fatalf("cut: image has %d new and %d old sectors; Cut said kept %d lost %d (want some of each)", k, l, kept, lost)
	}
}
