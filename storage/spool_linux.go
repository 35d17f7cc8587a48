package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// spoolChunk is how much of a spool may be dirty in the page cache.
const spoolChunk = 8 << 20

// spoolWriter writes a spool with at most two chunks of it dirty: each
// full chunk is sent to the disk at once and the one before it waited
// for. Left to the kernel, the whole spool (the store's size) became
// dirty in a second and its writeback 30 s later filled the disk's queue
// in one go, so every receipt's fsync behind it waited 0.4 s
// (bench/backuplat). Written as it goes, the copy takes the disk's pace,
// inside a read transaction that the store's mapping headroom makes
// harmless to commits.
type spoolWriter struct {
	f       *os.File
	written int64
	synced  int64 // the spool up to here has been sent to the disk
}

func newSpoolWriter(f *os.File) *spoolWriter { return &spoolWriter{f: f} }

func (w *spoolWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	for err == nil && w.written-w.synced >= spoolChunk {
		fd := int(w.f.Fd())
		// Start this chunk's writeback; wait for the previous one.
		unix.SyncFileRange(fd, w.synced, spoolChunk, unix.SYNC_FILE_RANGE_WRITE)
		if w.synced >= spoolChunk {
			unix.SyncFileRange(fd, w.synced-spoolChunk, spoolChunk,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		}
		w.synced += spoolChunk
	}
	return n, err
}
