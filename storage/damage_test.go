package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/internal/damage"
	"github.com/shopbridge/shopbridge/storage"
)

// TestOpenRefusesDamage opens every damaged copy internal/damage makes,
// read-write and read-only: each is refused with a DamageError whose one
// line names the file, and the file is unchanged. A panic here would end
// the test binary: the checks before bbolt maps the file must catch all.
func TestOpenRefusesDamage(t *testing.T) {
	src, _, err := damage.MakeSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	copies, err := damage.Make(src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	perClass := map[string]int{}
	for _, c := range copies {
		perClass[c.Class]++
		t.Run(c.Name, func(t *testing.T) {
			before := hashFile(t, c.Path)
			for _, ro := range []bool{false, true} {
				s, err := storage.Open(c.Path, storage.Options{ReadOnly: ro, Logger: quietLogger()})
				if err == nil {
					s.Close()
					t.Fatalf("read-only=%v: a damaged store opened", ro)
				}
				line := err.Error()
				if !storage.IsDamage(err) || !strings.Contains(line, c.Path) || !strings.Contains(line, "shopbridge restore") || strings.Contains(line, "\n") {
					t.Errorf("read-only=%v: the error is not one damage line naming the file and the restore: %q", ro, line)
				}
				t.Logf("read-only=%v: %s", ro, line)
			}
			if after := hashFile(t, c.Path); !bytes.Equal(before, after) {
				t.Errorf("opening changed the file")
			}
		})
	}
	for _, class := range damage.Classes {
		if perClass[class] == 0 {
			t.Errorf("no copy of class %s", class)
		}
	}
	t.Logf("%d copies: %v", len(copies), perClass)
}

func hashFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return h[:]
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDamageWhileServing damages the pages of a store that is open, as a
// failing disk or a stray write would, under every kind of read: each call
// returns (no panic reaches the test), the store turns degraded with the
// reason "store damaged", writes are refused before bbolt sees them, and
// Ping passes (a restart would not help).
func TestDamageWhileServing(t *testing.T) {
	src, ids, err := damage.MakeSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	s, err := storage.Open(src, storage.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kinds, ps, err := storage.PageMap(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	junk := make([]byte, ps)
	n := 0
	for id, k := range kinds {
		if k == storage.PageLeaf || k == storage.PageBranch {
			for i := range junk {
				junk[i] = byte(rng.IntN(256))
			}
			if _, err := f.WriteAt(junk, int64(id*ps)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	f.Close()
	var failed int
	reads := map[string]func() error{
		"list":     func() error { _, err := s.List(storage.ListQuery{}); return err },
		"receipts": func() error { _, err := s.Receipts(1000); return err },
		"receipt":  func() error { _, err := s.Receipt(ids[len(ids)/2]); return err },
		"journal":  func() error { _, err := s.Journal(storage.JournalQuery{}); return err },
		"find":     func() error { _, err := s.FindBills("9000", 50); return err },
		"stats":    func() error { _, err := s.Stats(); return err },
		"backup":   func() error { _, err := s.WriteTo(io.Discard); return err },
	}
	for name, read := range reads {
		if err := read(); err != nil {
			failed++
			t.Logf("%s: %v", name, err)
		}
	}
	if failed == 0 {
		t.Fatalf("every read passed on a store with %d pages overwritten", n)
	}
	h := s.Health()
	if !s.Damaged() || h.State != storage.StateDegraded || h.Reason != storage.FaultDamaged || h.Error == "" {
		t.Fatalf("after the damage: damaged=%v health=%+v", s.Damaged(), h)
	}
	if _, err := s.AcceptReceipt(receipt("after-damage", "SELL", "", "")); shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
		t.Errorf("a receipt on a damaged store: %v, want EUNAVAILABLE", err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping of a damaged store: %v", err)
	}
	if c := strings.Count(logs.String(), "store degraded: store damaged"); c != 1 {
		t.Errorf("%d log lines say the store is damaged, want 1:\n%s", c, logs)
	}
}

// TestFileCutUnderTheStore cuts the file of an open store to two pages: a
// read of the map past the end is a SIGBUS, which guard turns into the
// read-error state instead of "fatal error: fault".
func TestFileCutUnderTheStore(t *testing.T) {
	src, ids, err := damage.MakeSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := storage.Open(src, storage.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Truncate(src, 8192); err != nil {
		t.Fatal(err)
	}
	_, err = s.Receipt(ids[len(ids)-1])
	if shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
		t.Fatalf("a read past the end of the cut file: %v, want EUNAVAILABLE", err)
	}
	if h := s.Health(); h.Reason != storage.FaultReadFault || !s.Damaged() {
		t.Errorf("health after the cut: %+v", h)
	}
	if _, err := s.AcceptReceipt(receipt("after-cut", "SELL", "", "")); shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
		t.Errorf("a receipt after the cut: %v", err)
	}
}

// TestBackgroundCheckFindsDamage: a store larger than the open budget opens
// after a partial check, and the full check after Open finds a page broken
// beyond what the partial one read.
func TestBackgroundCheckFindsDamage(t *testing.T) {
	src, _, err := damage.MakeSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	kinds, ps, err := storage.PageMap(src)
	if err != nil {
		t.Fatal(err)
	}
	defer func(b int) { storage.OpenBudget = b }(storage.OpenBudget)
	storage.OpenBudget = 4
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for id := len(kinds) - 1; id >= 2; id-- {
		if kinds[id] != storage.PageLeaf {
			continue
		}
		b := bytes.Clone(orig)
		binary.LittleEndian.PutUint64(b[id*ps:], uint64(id+1)) // the page's number, wrong
		if err := os.WriteFile(src, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := storage.Open(src, storage.Options{Logger: quietLogger()})
		if err != nil {
			continue // the partial check reached it: another page
		}
		defer s.Close()
		internalPoll(t, "the background check marks the store damaged", s.Damaged)
		if h := s.Health(); h.Reason != storage.FaultDamaged || !strings.Contains(h.Error, "carries the number") {
			t.Errorf("health: %+v", h)
		}
		return
	}
	t.Fatal("the partial check at open reached every leaf page")
}

func internalPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBackgroundCheckUnderWrites: the full check after Open walks the
// pages of its transaction while receipts and journal entries commit,
// freeing and reusing pages (the check waits inside its transaction until
// the test has committed); it must not take pages that changed under it
// for damage.
func TestBackgroundCheckUnderWrites(t *testing.T) {
	src, _, err := damage.MakeSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func(b int) { storage.OpenBudget = b }(storage.OpenBudget)
	storage.OpenBudget = 4
	inCheck, resume := make(chan struct{}), make(chan struct{})
	storage.SetCheckHook(func() { close(inCheck); <-resume })
	defer storage.SetCheckHook(nil)
	logs := &syncBuffer{}
	s, err := storage.Open(src, storage.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-inCheck
	pruned := 0
	for i := range 40 {
		if _, err := s.AcceptReceipt(receipt(fmt.Sprintf("during-check-%d", i), "SELL", "", "")); err != nil {
			t.Fatalf("receipt %d during the check: %v", i, err)
		}
		// Entries in, the oldest out: pages freed and used again.
		if err := s.AppendJournal(journalEntries(20, 500)); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneJournal(time.Now(), 365*24*time.Hour, 256<<10, 100)
		if err != nil {
			t.Fatal(err)
		}
		pruned += n
	}
	if pruned == 0 {
		t.Fatal("nothing was pruned: no pages were freed under the check")
	}
	close(resume)
	internalPoll(t, "the check ends", func() bool { return strings.Contains(logs.String(), "store checked") || s.Damaged() })
	if s.Damaged() {
		t.Fatalf("the check took a store under writes for damaged: %+v", s.Health())
	}
	t.Logf("120 commits and %d journal entries pruned under the check; %s", pruned, strings.TrimSpace(logs.String()))
}
