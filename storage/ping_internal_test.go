package storage

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ping(s *Store, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Ping(ctx)
}

// TestPingHungCommit holds the write lock the way a commit stuck on a dying
// disk does: reads (and so /healthz) still pass, Ping does not.
func TestPingHungCommit(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := ping(s, 10*time.Second); err != nil {
		t.Fatalf("ping of an idle store: %v", err)
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Healthy() {
		t.Fatal("reads fail while a write transaction is open")
	}
	if err := ping(s, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no answer after") {
		t.Fatalf("ping with the commit lock held = %v, want no answer after", err)
	}
	// The first ping still waits for the lock: no second one piles up.
	if err := ping(s, 10*time.Second); err == nil || !strings.Contains(err.Error(), "no answer to a ping started") {
		t.Fatalf("second ping = %v, want the first one reported", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ping(s, 10*time.Second)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping after the lock was given back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := s.Commits()
	if err := ping(s, 10*time.Second); err != nil || s.Commits() != before {
		t.Fatalf("ping = %v, commits %d -> %d: a ping must not commit", err, before, s.Commits())
	}
}

func TestPingClosedAndReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := ping(s, 10*time.Second); err == nil {
		t.Fatal("ping of a closed store passed")
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ping(ro, 10*time.Second); err != nil {
		t.Fatalf("ping of a read-only store: %v", err)
	}
}
