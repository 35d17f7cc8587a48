//go:build !linux

package storage

import bolt "go.etcd.io/bbolt"

// pageDropper does nothing here: only Linux's MADV_DONTNEED is known to take
// file pages out of the resident set and leave them in the page cache.
type pageDropper struct{}

func newPageDropper(*bolt.DB, *bolt.Tx) pageDropper { return pageDropper{} }

func (pageDropper) drop([]byte) {}

func (s *Store) trimMapped() {}
