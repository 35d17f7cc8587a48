// Package storetest is the one MustOpen helper for tests of every package
// that needs a real store: a bbolt file in the test's temporary directory,
// closed and checked (bbolt's consistency check plus the counts) on cleanup,
// so a test that leaves the store corrupt fails loudly.
package storetest

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/shopbridge/shopbridge/storage"
)

// MustOpen opens a new store in a temporary directory.
func MustOpen(tb testing.TB) *storage.Store {
	tb.Helper()
	return MustOpenAt(tb, filepath.Join(tb.TempDir(), storage.FileName))
}

// MustOpenAt is MustOpen for a given file, new or not.
func MustOpenAt(tb testing.TB, path string) *storage.Store {
	tb.Helper()
	s, err := storage.Open(path, storage.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatalf("open store %s: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close store %s: %v", path, err)
		}
		if err := storage.CheckFile(path); err != nil {
			tb.Errorf("consistency check of %s after the test: %v", path, err)
		}
	})
	return s
}
