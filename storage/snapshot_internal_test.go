package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// snapshotStore is a store of a few MiB: more than one chunk of the
// spool's copy, writeback and pacer.
func snapshotStore(t *testing.T) *Store {
	t.Helper()
	s := openTemp(t)
	pad := strings.Repeat("Кресло Кларк ", 400) // about 9 KiB a receipt
	for i := range 400 {
		id := fmt.Sprintf("ev-%04d", i)
		if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: id, Type: "SELL",
			Body: []byte(`{"id":"` + id + `","data":{"type":"SELL","note":"` + pad + `"}}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.BackupSize(); n < 3*paceChunk {
		t.Fatalf("the store is %d bytes, want more than three chunks", n)
	}
	return s
}

// TestSnapshotCopiesTheStore: the spool holds exactly what bbolt's WriteTo
// writes in the same state, its SHA-256 is the spool's, and a scheduled
// backup's copy of it (CopyTo) is the same bytes, whether the kernel
// copies (copy_file_range) or the copy reads through, with the pacer
// pausing (one P) or not.
func TestSnapshotCopiesTheStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kernel bool
		procs  int
	}{{"kernel copy", true, 0}, {"read through", false, 0}, {"kernel copy, one P", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(k bool) { kernelCopy = k }(kernelCopy)
			kernelCopy = tc.kernel
			if tc.procs > 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tc.procs))
			}
			s := snapshotStore(t)
			var want bytes.Buffer
			if _, err := s.WriteTo(&want); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			sn, err := s.Snapshot(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			defer sn.Close()
			got := readAll(t, sn)
			if sn.Size != int64(want.Len()) || !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("spool: %d bytes (Size %d), WriteTo wrote %d: the copies differ", len(got), sn.Size, want.Len())
			}
			if sum := sha256.Sum256(got); sum != sn.SHA256 {
				t.Errorf("SHA256 %x, the spool's is %x", sn.SHA256, sum)
			}
			if sn.Counts.Receipts != 400 {
				t.Errorf("Counts.Receipts %d, want 400", sn.Counts.Receipts)
			}

			path := filepath.Join(dir, "backup.db")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := sn.CopyTo(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if b, _ := os.ReadFile(path); !bytes.Equal(b, want.Bytes()) {
				t.Fatalf("CopyTo wrote %d bytes, not the snapshot's %d", len(b), want.Len())
			}
			if st, err := CheckFileCounts(path); err != nil || st.Receipts != 400 {
				t.Errorf("CheckFileCounts of the copy: %+v, %v", st, err)
			}
		})
	}
}

// TestSpoolCopiesByRange: bbolt's WriteTo hands the spool the store's file
// by range (fileRange knows its reader), so the data pages are copied by
// copyRange and not through io.Copy's buffer.
func TestSpoolCopiesByRange(t *testing.T) {
	s := snapshotStore(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newSpoolWriter(context.Background(), nil, f)
	var n int64
	if err := s.view(func(tx *bolt.Tx) (err error) { n, err = tx.WriteTo(w); return err }); err != nil {
		t.Fatal(err)
	}
	if want := n - 2*int64(os.Getpagesize()); w.ranged != want {
		t.Errorf("%d of the %d data bytes were copied by range", w.ranged, want)
	}
}

// TestSnapshotCopyToStops: a copy whose context has ended stops, with the
// context's error.
func TestSnapshotCopyToStops(t *testing.T) {
	s := snapshotStore(t)
	sn, err := s.Snapshot(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sn.CopyTo(ctx, f); !errors.Is(err, context.Canceled) {
		t.Errorf("CopyTo with its context ended: %v, want context.Canceled", err)
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("CopyTo with its context ended wrote %d bytes", fi.Size())
	}
}

func readAll(t *testing.T, sn *Snapshot) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(sn.Reader()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSnapshotStops: a snapshot whose context has ended stops with its
// error and leaves no spool behind.
func TestSnapshotStops(t *testing.T) {
	s := snapshotStore(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if sn, err := s.Snapshot(ctx, dir); !errors.Is(err, context.Canceled) {
		if sn != nil {
			sn.Close()
		}
		t.Fatalf("Snapshot with its context ended: %v, want context.Canceled", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, SpoolPrefix+"*")); len(left) > 0 {
		t.Errorf("spools left behind: %v", left)
	}
}
