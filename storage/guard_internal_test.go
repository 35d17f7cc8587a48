package storage

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkGuard measures what guard adds to a read transaction: a bare
// bbolt View against the store's view (SetPanicOnFault and a recover).
func BenchmarkGuard(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), FileName), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	read := func(tx *bolt.Tx) error { tx.Bucket(bucketMeta).Get(keyInstanceID); return nil }
	b.Run("bbolt-view", func(b *testing.B) {
		for b.Loop() {
			s.db.View(read)
		}
	})
	b.Run("guarded-view", func(b *testing.B) {
		for b.Loop() {
			s.view(read)
		}
	})
}
