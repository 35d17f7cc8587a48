package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
	bolt "go.etcd.io/bbolt"
)

// writeMeta changes the store's meta bucket with bbolt directly, as an older
// or newer shopbridge would have left it.
func writeMeta(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func readMeta(t *testing.T, path, key string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket([]byte("meta")).Get([]byte(key)))
		return nil
	})
	return v
}

func newClosedStoreFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), storage.FileName)
	s, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenNewStore(t *testing.T) {
	s := storetest.MustOpen(t)
	if id := s.InstanceID(); len(id) != 16 {
		t.Errorf("InstanceID = %q, want 16 hex digits", id)
	}
	if !s.Healthy() {
		t.Error("a new store is not healthy")
	}
	if got := s.System(); got != "" {
		t.Errorf("System of a new store = %q, want empty", got)
	}
	if !s.SyncedAt().IsZero() {
		t.Errorf("SyncedAt of a new store = %v, want zero", s.SyncedAt())
	}
	if got := readMetaOpen(t, s); got != fmt.Sprint(storage.SchemaVersion) {
		t.Errorf("schema of a new store = %q, want %d", got, storage.SchemaVersion)
	}
}

// readMetaOpen reads the schema through a backup, since the open store holds
// the file lock.
func readMetaOpen(t *testing.T, s *storage.Store) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "copy.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return readMeta(t, path, "schema")
}

func TestReopenKeepsInstanceAndMeta(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	s, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.InstanceID()
	if err := s.SetSystem("CRM, Evotor"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 22, 21, 44, 27, 123456789, time.UTC)
	if _, err := s.ApplyList(nil, storage.ListAll, at); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s = storetest.MustOpenAt(t, path)
	if s.InstanceID() != id {
		t.Errorf("InstanceID after reopen = %q, want %q", s.InstanceID(), id)
	}
	if s.System() != "CRM, Evotor" {
		t.Errorf("System after reopen = %q", s.System())
	}
	if !s.SyncedAt().Equal(at) {
		t.Errorf("SyncedAt after reopen = %v, want %v", s.SyncedAt(), at)
	}
}

func TestOpenSchema(t *testing.T) {
	t.Run("newer version is refused naming both versions", func(t *testing.T) {
		path := newClosedStoreFile(t)
		writeMeta(t, path, func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("7"))
		})
		_, err := storage.Open(path, storage.Options{})
		if err == nil {
			t.Fatal("a store with schema 7 was opened")
		}
		for _, want := range []string{"schema version 7", fmt.Sprintf("(%d)", storage.SchemaVersion), path} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if err := storage.CheckFile(path); err == nil || !strings.Contains(err.Error(), "schema version 7") {
			t.Errorf("CheckFile of a newer store = %v, want the schema error", err)
		}
		if got := readMeta(t, path, "schema"); got != "7" {
			t.Errorf("refusing the store changed its schema to %q", got)
		}
	})
	t.Run("schema 1 is migrated to the current one", func(t *testing.T) {
		path := newClosedStoreFile(t)
		writeMeta(t, path, func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket([]byte("terminals")); err != nil {
				return err
			}
			return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1"))
		})
		s, err := storage.Open(path, storage.Options{})
		if err != nil {
			t.Fatalf("open schema 1 store: %v", err)
		}
		if err := s.PutTerminals([]storage.Terminal{{Device: "dev-1", Address: "192.168.1.5"}}); err != nil {
			t.Errorf("terminals after migration: %v", err)
		}
		s.Close()
		if got := readMeta(t, path, "schema"); got != fmt.Sprint(storage.SchemaVersion) {
			t.Errorf("schema after migration = %q, want %d", got, storage.SchemaVersion)
		}
		if err := storage.CheckFile(path); err != nil {
			t.Error(err)
		}
	})
	t.Run("schema 2 gains its counts and paid-twice set", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), storage.FileName)
		s := storetest.MustOpenAt(t, path)
		at := time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)
		for _, id := range []string{"1", "2", "3"} {
			if _, _, err := s.PutBill([]byte(`{"id":`+id+`,"date":"2026-03-22 10:00:00","summ":1,"number":"N`+id+`"}`), at); err != nil {
				t.Fatal(err)
			}
		}
		for i, bill := range []string{"1", "1", "2"} {
			r := &shopbridge.Receipt{EventID: fmt.Sprint("e", i), Body: []byte(fmt.Sprint(`{"n":`, i, `}`)), Type: "SELL", BillID: bill}
			if _, err := s.AcceptReceipt(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Park("e2", "400 no"); err != nil {
			t.Fatal(err)
		}
		want, _ := s.Stats()
		s.Close()
		writeMeta(t, path, func(tx *bolt.Tx) error {
			meta := tx.Bucket([]byte("meta"))
			for _, k := range []string{"n_bills", "n_open", "n_receipts", "n_outbox", "n_parked"} {
				if err := meta.Delete([]byte(k)); err != nil {
					return err
				}
			}
			if err := tx.DeleteBucket([]byte("bills.paid2")); err != nil {
				return err
			}
			return meta.Put([]byte("schema"), []byte("2"))
		})
		s = storetest.MustOpenAt(t, path)
		got, _ := s.Stats()
		got.Commits, want.Commits, got.FileBytes, want.FileBytes = 0, 0, 0, 0
		if got != want || want.Bills != 3 || want.Receipts != 3 || want.Outbox != 2 || want.Parked != 1 || want.OpenBills != 1 {
			t.Errorf("stats after migration %+v, before %+v", got, want)
		}
		if ids, _ := s.PaidTwice(); len(ids) != 1 || ids[0] != "1" {
			t.Errorf("paid twice after migration: %v", ids)
		}
	})
	t.Run("bbolt file of something else is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("widgets"))
			if err != nil {
				return err
			}
			return b.Put([]byte("a"), []byte("b"))
		})
		db.Close()
		_, err = storage.Open(path, storage.Options{})
		if err == nil || !strings.Contains(err.Error(), "not a shopbridge store") {
			t.Errorf("Open of a foreign bbolt file = %v, want 'not a shopbridge store'", err)
		}
	})
	t.Run("file that is not bbolt is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "text.db")
		junk := bytes.Repeat([]byte("this is not a database\n"), 1000)
		if err := os.WriteFile(path, junk, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := storage.Open(path, storage.Options{})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Open of a text file = %v, want an error naming %s", err, path)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, junk) {
			t.Error("Open changed a file that is not a store")
		}
	})
	t.Run("read-only open of an empty directory's file fails", func(t *testing.T) {
		err := storage.CheckFile(filepath.Join(t.TempDir(), "missing.db"))
		if err == nil {
			t.Error("CheckFile of a missing file succeeded")
		}
	})
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	storetest.MustOpenAt(t, path)
	_, err := storage.Open(path, storage.Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("a second Open of the same file succeeded")
	}
	for _, want := range []string{"locked by another process", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	s, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s.Healthy() {
		t.Error("a closed store is healthy")
	}
	_, err = s.List(storage.ListQuery{})
	if k := shopbridge.ErrorKind(err); k != shopbridge.EUNAVAILABLE {
		t.Errorf("List on a closed store: kind %q (%v), want %q", k, err, shopbridge.EUNAVAILABLE)
	}
	_, err = s.AcceptReceipt(receipt("ev-closed", "SELL", "", ""))
	if k := shopbridge.ErrorKind(err); k != shopbridge.EUNAVAILABLE {
		t.Errorf("AcceptReceipt on a closed store: kind %q (%v), want %q", k, err, shopbridge.EUNAVAILABLE)
	}
	_, err = s.BillBody(nil, "1")
	if k := shopbridge.ErrorKind(err); k != shopbridge.EUNAVAILABLE {
		t.Errorf("BillBody on a closed store: kind %q (%v), want %q", k, err, shopbridge.EUNAVAILABLE)
	}
}

func TestWriteTo(t *testing.T) {
	s := storetest.MustOpen(t)
	now := time.Date(2026, 3, 22, 21, 0, 0, 0, time.UTC)
	if _, err := s.ApplyList(mustSummaries(t, listFixture), storage.ListAll, now); err != nil {
		t.Fatal(err)
	}
	body := mustRead(t, "testdata/bill_fidelity.json")
	if _, _, err := s.PutBill(body, now); err != nil {
		t.Fatal(err)
	}
	r := receipt("ev-backup", "SELL", "49024", "FullSettlement")
	if _, err := s.AcceptReceipt(r); err != nil {
		t.Fatal(err)
	}
	wantList, _ := s.List(storage.ListQuery{})

	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteTo(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Size() != n || n != s.BackupSize() {
		t.Errorf("WriteTo wrote %d bytes, file has %d, BackupSize says %d", n, fi.Size(), s.BackupSize())
	}
	if err := storage.CheckFile(path); err != nil {
		t.Fatalf("CheckFile of the backup: %v", err)
	}
	b := storetest.MustOpenAt(t, path)
	if b.InstanceID() != s.InstanceID() {
		t.Errorf("backup instance %q, want %q", b.InstanceID(), s.InstanceID())
	}
	gotList, err := b.List(storage.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if ids(gotList) != ids(wantList) {
		t.Errorf("backup list %s, want %s", ids(gotList), ids(wantList))
	}
	got, err := b.BillBody(nil, "123456789012345678901")
	if err != nil || !bytes.Equal(got, bytes.TrimSpace(body)) {
		t.Errorf("backup bill body = %q, %v", got, err)
	}
	rr, err := b.Receipt("ev-backup")
	if err != nil || !bytes.Equal(rr.Body, r.Body) {
		t.Errorf("backup receipt = %+v, %v", rr, err)
	}
}

func TestGroupCommit(t *testing.T) {
	s := storetest.MustOpen(t)
	const n = 200
	before := s.Commits()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dup, err := s.AcceptReceipt(receipt(fmt.Sprintf("ev-%03d", i), "SELL", "", ""))
			if err == nil && dup {
				err = fmt.Errorf("receipt %d: reported as duplicate", i)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	commits := s.Commits() - before
	t.Logf("%d concurrent receipts took %d commits", n, commits)
	if commits >= 100 {
		t.Errorf("%d concurrent receipts took %d commits, want well below %d (group commit)", n, commits, n)
	}
	out, err := s.Outbox(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range out {
		if seen[r.EventID] {
			t.Errorf("receipt %s is in the outbox twice", r.EventID)
		}
		seen[r.EventID] = true
	}
	if len(out) != n || len(seen) != n {
		t.Errorf("outbox has %d receipts (%d distinct), want %d", len(out), len(seen), n)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Receipts != n || st.Outbox != n {
		t.Errorf("stats %+v, want %d receipts and %d in the outbox", st, n, n)
	}
}

func TestStats(t *testing.T) {
	s := storetest.MustOpen(t)
	now := time.Date(2026, 3, 22, 21, 0, 0, 0, time.UTC)
	if _, err := s.ApplyList(mustSummaries(t, listFixture), storage.ListAll, now); err != nil {
		t.Fatal(err)
	}
	s.AcceptReceipt(receipt("a", "SELL", "49040", ""))
	s.AcceptReceipt(receipt("b", "SELL", "", ""))
	s.Park("b", "400 bad receipt")
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := storage.Stats{Bills: 3, OpenBills: 2, Receipts: 2, Outbox: 1, Parked: 1}
	if st.Bills != want.Bills || st.OpenBills != want.OpenBills || st.Receipts != want.Receipts ||
		st.Outbox != want.Outbox || st.Parked != want.Parked {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	if st.FileBytes <= 0 || st.Commits == 0 {
		t.Errorf("Stats = %+v: want file size and commits", st)
	}
	if s.OutboxLen() != 1 {
		t.Errorf("OutboxLen = %d, want 1", s.OutboxLen())
	}
}

func TestTerminals(t *testing.T) {
	s := storetest.MustOpen(t)
	seen := time.Date(2026, 3, 22, 21, 0, 0, 0, time.UTC)
	err := s.PutTerminals([]storage.Terminal{
		{Device: "20251202-AA8B-407D-80BF-6266DA5332CF", Address: "192.168.1.20", LastSeen: seen, LastKind: "LIST"},
		{Address: "192.168.1.21", LastSeen: seen},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Seen again: one record per device.
	if err := s.PutTerminals([]storage.Terminal{{Device: "20251202-AA8B-407D-80BF-6266DA5332CF", Address: "192.168.1.22", LastSeen: seen.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Terminals()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("Terminals = %+v, want 2", ts)
	}
	for _, tm := range ts {
		if tm.Device != "" && (tm.Address != "192.168.1.22" || !tm.LastSeen.Equal(seen.Add(time.Minute))) {
			t.Errorf("terminal %+v not updated", tm)
		}
	}
}

func TestErrorsAreProjectKinds(t *testing.T) {
	s := storetest.MustOpen(t)
	_, err := s.Bill("42")
	var e *shopbridge.Error
	if !errors.As(err, &e) || e.Kind != shopbridge.ENOTFOUND || e.Subject != "id" {
		t.Errorf("Bill of an unknown id = %#v, want ENOTFOUND about id", err)
	}
	_, err = s.Receipt("nope")
	if shopbridge.ErrorKind(err) != shopbridge.ENOTFOUND {
		t.Errorf("Receipt of an unknown id = %v, want ENOTFOUND", err)
	}
}
