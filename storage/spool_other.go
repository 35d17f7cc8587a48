//go:build !linux

package storage

import "os"

// writeback is the kernel's own: sync_file_range is Linux's.
type writeback struct{}

func newWriteback(*os.File) *writeback { return nil }

func (*writeback) upTo(int64) {}

// copyRange copies n bytes of src at off to the end of the spool.
func (w *spoolWriter) copyRange(src *os.File, off int64, n int) (int, error) {
	return w.readCopy(src, off, n)
}
