package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// A backup is taken in two steps so that a slow reader never holds a bbolt
// read transaction: Snapshot copies the store, inside one short read
// transaction, to a spool file on the store's own disk (a file-to-file copy
// from the page cache); the transaction ends and the caller streams the
// spool at whatever pace its reader takes. A read transaction held open
// keeps bbolt from remapping the file: a commit that must grow the store
// past its current mapping waits for it, holding the write lock, and every
// new read transaction waits behind that commit (bbolt's mmap lock prefers
// writers). Held for a whole download at 300 KiB/s that stopped receipts,
// /healthz and the watchdog for minutes (issue 16.1); held for the spool's
// copy it is seconds at most, and mmapHeadroom below keeps even that from
// blocking commits on the platforms where it can.

// SpoolPrefix starts the name of a spool file in the data directory. A
// spool left by a crash (Windows only: elsewhere it is unlinked at once) is
// removed by the next Snapshot.
const SpoolPrefix = ".shopbridge-spool-"

// spoolMu makes snapshots one at a time, so that the free-space check of
// each sees the spools before it.
var spoolMu sync.Mutex

// Snapshot is a consistent copy of the store in a spool file, with its size,
// SHA-256 and the counts it holds. Close removes it.
type Snapshot struct {
	f      *os.File
	path   string
	Size   int64
	SHA256 [sha256.Size]byte
	// TakenAt is when the read transaction began: the snapshot holds every
	// commit before it.
	TakenAt time.Time
	// Counts are the store's counts (from meta) as the snapshot holds them.
	Counts Stats
}

// Reader reads the snapshot from its start; each call gets its own.
func (sn *Snapshot) Reader() io.Reader { return io.NewSectionReader(sn.f, 0, sn.Size) }

// Close closes and removes the spool.
func (sn *Snapshot) Close() error {
	err := sn.f.Close()
	if runtime.GOOS == "windows" {
		if rerr := os.Remove(sn.path); err == nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	return err
}

// spoolReserve is the free space a spool must leave on its disk for the
// store to go on growing: receipts come before backups.
func spoolReserve(size int64) int64 { return max(64<<20, size/10) }

// Snapshot copies a consistent snapshot of the store to a spool file in dir
// (normally the data directory: fast, and no fsync is needed). It refuses,
// before writing anything, when dir lacks room for the copy plus a reserve
// left for the store (EUNAVAILABLE, naming the sizes), and removes what it
// wrote when the disk fills meanwhile. It stops, removing what it wrote,
// when ctx ends or the store closes: the copy of a large store takes
// tens of seconds (it gives way to the registers), and a daemon that
// stops does not wait for it.
func (s *Store) Snapshot(ctx context.Context, dir string) (*Snapshot, error) {
	spoolMu.Lock()
	defer spoolMu.Unlock()
	removeStaleSpools(dir)
	size := s.BackupSize()
	if free, ok := freeSpace(dir); ok && free < size+spoolReserve(size) {
		return nil, shopbridge.Errorf(shopbridge.EUNAVAILABLE, "backup",
			"no room in %s for the backup's copy of the store: it needs %s and %s left for the store, %s is free",
			dir, mib(size), mib(spoolReserve(size)), mib(free))
	}
	f, err := os.CreateTemp(dir, SpoolPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("backup: create the spool file in %s: %w", dir, err)
	}
	sn := &Snapshot{f: f, path: f.Name()}
	if runtime.GOOS != "windows" {
		// Unlinked while open: a crash leaves nothing behind.
		os.Remove(sn.path)
	}
	fail := func(err error) (*Snapshot, error) {
		sn.Close()
		if errors.Is(err, syscall.ENOSPC) {
			return nil, shopbridge.Errorf(shopbridge.EUNAVAILABLE, "backup", "the disk of %s filled up while the backup copied the store (%s): free space there", dir, mib(size))
		}
		return nil, fmt.Errorf("backup: write the spool file in %s: %w", dir, err)
	}
	err = s.view(func(tx *bolt.Tx) error {
		sn.TakenAt = time.Now()
		sn.Counts = countsOf(tx)
		var err error
		sn.Size, err = tx.WriteTo(newSpoolWriter(ctx, s.closing, f))
		return err
	})
	if err != nil {
		return fail(err)
	}
	// The checksum after the transaction: it need not hold it.
	sum, err := spoolSHA256(ctx, s.closing, f, sn.Size)
	if err != nil {
		return fail(err)
	}
	sn.SHA256 = sum
	return sn, nil
}

// countsOf reads the counts kept in meta (storedCounts), and the file's size.
func countsOf(tx *bolt.Tx) Stats {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return Stats{}
	}
	st := Stats{FileBytes: tx.Size()}
	for _, c := range storedCounts {
		*c.stat(&st) = int(getInt(meta, c.key))
	}
	return st
}

func removeStaleSpools(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, SpoolPrefix+"*"))
	for _, m := range matches {
		os.Remove(m) // one still open (Windows) stays
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// CheckFileCounts is CheckFile, and the counts the file holds (read back
// from it, after the consistency check that also checks them against the
// buckets).
func CheckFileCounts(path string) (Stats, error) {
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return Stats{}, err
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		return Stats{}, err
	}
	var st Stats
	err = s.view(func(tx *bolt.Tx) error { st = countsOf(tx); return nil })
	return st, err
}

// initialMmapSize maps the store with room to grow into (1 GiB) from the
// start, so that a commit does not have to remap, and so wait for every
// read transaction (a backup's spool, the background check), until the
// store passes 1 GiB; past it the mapping is twice the store at open
// (initialMmap) and bbolt grows it 1 GiB at a time, so remaps stay rare. It
// costs address space, not memory: pages past the file's end are never
// touched. Not on Windows, where bbolt grows the file itself to the
// mapping's size, nor on 32-bit builds; read-only opens keep initialMmap's.
func initialMmapSize(opts Options, path string) int {
	if opts.MmapSize != 0 {
		return max(opts.MmapSize, 0)
	}
	headroom := 1 << 30
	if opts.ReadOnly || runtime.GOOS == "windows" || strconv.IntSize < 64 {
		headroom = 0
	}
	return max(headroom, initialMmap(path))
}
