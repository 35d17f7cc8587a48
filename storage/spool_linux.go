package storage

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The spool goes to the disk a chunk at a time (writebackChunk), each
// chunk started when it is complete and the one before it waited for, and
// no faster than writebackRate.
const (
	writebackChunk = 1 << 20
	writebackRate  = 32 << 20 // bytes/s
)

// writeback sends a spool to the disk as it is written. Left to the
// kernel, the whole spool (the store's size) was dirty at once and its
// writeback 30 s later filled the disk's queue in one go: every receipt's
// fsync behind it waited 0.4 s (bench/backuplat). Sent at the disk's own
// pace (700 MB/s on the benchmark's VM) it still made receipts wait 20 to
// 100 ms: a receipt's fsync flushes the disk's cache, and with it all of
// the spool written since the flush before (bench/rush; the same with no
// read transaction held, so it is the disk and not bbolt). At 32 MiB/s a
// flush finds a MiB or two: a gigabyte's spool takes 32 s, inside a read
// transaction that the store's mapping headroom makes harmless to
// commits, and a scheduled backup's copy of it as long again.
type writeback struct {
	fd     int
	start  time.Time
	synced int64 // the spool up to here has been sent to the disk
}

func newWriteback(f *os.File) *writeback { return &writeback{fd: int(f.Fd()), start: time.Now()} }

// upTo sends the chunks complete below off, keeping to writebackRate.
func (w *writeback) upTo(off int64) {
	for off-w.synced >= writebackChunk {
		// Start this chunk's writeback; wait for the previous one.
		unix.SyncFileRange(w.fd, w.synced, writebackChunk, unix.SYNC_FILE_RANGE_WRITE)
		if w.synced >= writebackChunk {
			unix.SyncFileRange(w.fd, w.synced-writebackChunk, writebackChunk,
				unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		}
		// And flush the disk's cache of it: a receipt's fsync then finds
		// a chunk there at most, not all the spool since its last one.
		unix.Fdatasync(w.fd)
		w.synced += writebackChunk
		time.Sleep(time.Until(w.start.Add(time.Duration(float64(w.synced) / writebackRate * float64(time.Second)))))
	}
}

// copyRange copies n bytes of src at off to the end of the spool inside
// the kernel (copy_file_range: no trip through the daemon's memory), or
// through a buffer where the kernel cannot (an old kernel, another file
// system, a sandbox without it: the rest of this copy reads through).
func (w *spoolWriter) copyRange(src *os.File, off int64, n int) (int, error) {
	if !w.readThrough {
		m, err := unix.CopyFileRange(int(src.Fd()), &off, int(w.f.Fd()), nil, n, 0)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EOPNOTSUPP) &&
			!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
			return 0, &os.PathError{Op: "copy_file_range", Path: w.f.Name(), Err: err}
		}
		w.readThrough = true
	}
	return w.readCopy(src, off, n)
}
