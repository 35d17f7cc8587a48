package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/internal/fulldisk"
	"github.com/shopbridge/shopbridge/storage"
)

// syncBuffer is a log sink shared by the test and the store's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// bigReceipt is a receipt with a body of about n bytes, so that a few fill
// pages fast.
func bigReceipt(id string, n int) *shopbridge.Receipt {
	r := receipt(id, "SELL", "", "")
	pad := strings.Repeat("x", n)
	r.Body = []byte(fmt.Sprintf(`{"id": %q, "data": {"type": "SELL", "pad": %q}}`, id, pad))
	return r
}

// TestFullDisk runs the store on a real 4 MiB tmpfs, fills it, and checks
// what a full disk does: EUNAVAILABLE errors carrying ENOSPC, one log line,
// the degraded state, a store that still opens, recovery by itself once the
// space is back, and every receipt acknowledged before still there.
func TestFullDisk(t *testing.T) {
	dir := fulldisk.Mount(t, "4m")
	path := filepath.Join(dir, storage.FileName)
	logs := &syncBuffer{}
	open := func() *storage.Store {
		s, err := storage.Open(path, storage.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatalf("open on the tmpfs: %v", err)
		}
		return s
	}
	s := open()
	defer func() { s.Close() }()

	var acked []string
	for i := range 20 {
		id := fmt.Sprintf("before-%d", i)
		if _, err := s.AcceptReceipt(bigReceipt(id, 3000)); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	filler := fulldisk.Fill(t, dir)

	// bbolt may still have free pages inside the file: post until a commit
	// needs a new one.
	var failed error
	for i := 0; i < 2000 && failed == nil; i++ {
		id := fmt.Sprintf("full-%d", i)
		if _, err := s.AcceptReceipt(bigReceipt(id, 3000)); err != nil {
			failed = err
		} else {
			acked = append(acked, id)
		}
	}
	if failed == nil {
		t.Fatal("2000 receipts fitted on a full 4 MiB file system")
	}
	if k := shopbridge.ErrorKind(failed); k != shopbridge.EUNAVAILABLE {
		t.Fatalf("a commit on a full disk: kind %q (%v), want %q", k, failed, shopbridge.EUNAVAILABLE)
	}
	if !errors.Is(failed, syscall.ENOSPC) {
		t.Errorf("the error %v does not carry ENOSPC", failed)
	}
	var e *shopbridge.Error
	if errors.As(failed, &e); e == nil || !strings.Contains(e.Message, "disk full") || strings.Contains(e.Message, dir) {
		t.Errorf("the message for people is %q: want the reason, no path", e.Message)
	}
	h := s.Health()
	if h.State != storage.StateDegraded || h.Reason != storage.FaultDiskFull || h.FailedCommits == 0 || h.Since.IsZero() {
		t.Errorf("Health on a full disk = %+v", h)
	}
	// More writes of every kind fail the same way, and the log does not
	// grow a line each.
	for i := range 30 {
		if _, err := s.AcceptReceipt(bigReceipt(fmt.Sprintf("more-%d", i), 3000)); shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
			t.Fatalf("receipt %d on a full disk: %v", i, err)
		}
	}
	if err := s.AppendJournal(journalEntries(50, 2000)); shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
		t.Errorf("AppendJournal on a full disk: %v", err)
	}
	if n := strings.Count(logs.String(), "store degraded: disk full"); n != 1 {
		t.Errorf("%d log lines say the disk is full, want 1:\n%s", n, logs)
	}
	if got := s.Health().FailedCommits; got < 32 {
		t.Errorf("FailedCommits = %d after 32 failed commits", got)
	}
	// A receipt acknowledged before is found, and while degraded a repeat
	// of it is answered only after a commit: a commit that writes nothing
	// new may fit in pages bbolt has free, or fail like the others.
	if _, err := s.Receipt(acked[0]); err != nil {
		t.Errorf("reading an acknowledged receipt on a full disk: %v", err)
	}
	commits := s.Commits()
	dup, err := s.AcceptReceipt(bigReceipt(acked[0], 3000))
	switch {
	case err == nil && (!dup || s.Commits() != commits+1):
		t.Errorf("a repeated receipt while degraded: dup %v after %d commits, want a duplicate after 1", dup, s.Commits()-commits)
	case err != nil && shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE:
		t.Errorf("a repeated receipt while degraded: %v", err)
	}

	// A store that needs nothing written opens on a full disk.
	s.Close()
	s = open()
	if s.Degraded() {
		t.Error("a store just opened is degraded before any write")
	}
	if _, err := s.AcceptReceipt(bigReceipt("reopened", 3000)); shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
		t.Fatalf("a receipt after reopening on a full disk: %v", err)
	}

	// Space back: the probe notices with no write from outside.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * storage.ProbeEvery)
	for s.Degraded() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if h := s.Health(); h.State != storage.StateOK || h.Reason != "" {
		t.Fatalf("Health %v after the space came back, want ok\n%s", h, logs)
	}
	if n := strings.Count(logs.String(), "disk space back"); n != 1 {
		t.Errorf("%d log lines say the space is back, want 1:\n%s", n, logs)
	}
	if _, err := s.AcceptReceipt(bigReceipt("after", 3000)); err != nil {
		t.Fatalf("a receipt after recovery: %v", err)
	}
	acked = append(acked, "after")
	if dup, err := s.AcceptReceipt(bigReceipt(acked[0], 3000)); err != nil || !dup {
		t.Errorf("a repeat after recovery: dup %v, %v", dup, err)
	}

	// Nothing acknowledged is lost, in the open store and after a reopen.
	s.Close()
	if err := storage.CheckFile(path); err != nil {
		t.Fatalf("consistency check after the full disk: %v", err)
	}
	s = open()
	out, err := s.Outbox(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	queued := map[string]bool{}
	for _, r := range out {
		queued[r.EventID] = true
	}
	for _, id := range acked {
		if _, err := s.Receipt(id); err != nil || !queued[id] {
			t.Errorf("acknowledged receipt %s: %v, in outbox %v", id, err, queued[id])
		}
	}
	if len(out) != len(acked) {
		t.Errorf("outbox holds %d receipts, %d were acknowledged", len(out), len(acked))
	}
	t.Logf("%d receipts acknowledged; log:\n%s", len(acked), logs)
}

func journalEntries(n, body int) []shopbridge.JournalEntry {
	es := make([]shopbridge.JournalEntry, n)
	for i := range es {
		es[i] = shopbridge.JournalEntry{Time: time.Now(), Client: "127.0.0.1", Kind: "LIST", Method: "GET",
			Path: "/api/v2/list", Status: 200, RespBody: bytes.Repeat([]byte{byte('a' + i%26)}, body)}
	}
	return es
}

func TestEmptyStoreFile(t *testing.T) {
	cases := []struct {
		name   string
		others []string // other files in the data directory
		refuse bool
	}{
		{"new directory", nil, false},
		{"config beside it", []string{"shopbridge.toml"}, false},
		{"marker of an earlier store", []string{storage.MarkerName}, true},
		{"a backup beside it", []string{"shopbridge-2026-01-31.db"}, true},
		{"left-over probe", []string{storage.FileName + ".probe"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, storage.FileName)
			for _, f := range append([]string{storage.FileName}, c.others...) {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := storage.Open(path, storage.Options{})
			if !c.refuse {
				if err != nil {
					t.Fatalf("an empty store in a new directory was refused: %v", err)
				}
				defer s.Close()
				if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
					t.Errorf("the store was not made: %v %v", fi, err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("an empty store file was opened as a new store")
			}
			for _, want := range []string{path, "is empty (0 bytes)", "restore a backup", "Backup and restore", "delete it"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
				t.Errorf("the refused file was changed: %v %v", fi, err)
			}
		})
	}
}

func TestMarkerWritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, storage.FileName)
	s, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.InstanceID()
	s.Close()
	b, err := os.ReadFile(filepath.Join(dir, storage.MarkerName))
	if err != nil || strings.TrimSpace(string(b)) != id {
		t.Fatalf("marker = %q, %v; want the instance id %s", b, err, id)
	}
	// The store cut to zero bytes afterwards is refused.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if s, err := storage.Open(path, storage.Options{}); err == nil {
		s.Close()
		t.Fatal("a store truncated to zero bytes was opened as new")
	}
	if err := storage.CheckFile(path); err == nil || !strings.Contains(err.Error(), "empty (0 bytes)") {
		t.Errorf("CheckFile of an empty file: %v", err)
	}
}
