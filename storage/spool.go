package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
)

// spoolWriter receives the store from bbolt's Tx.WriteTo: the two meta
// pages by Write, then the data pages by ReadFrom, which copies them from
// the store's file to the spool a chunk at a time (copyRange: inside the
// kernel where it can), sending it on to the disk as it goes (writeback)
// and pausing between chunks for the registers (pacer).
type spoolWriter struct {
	ctx     context.Context // ended: the copy stops
	stop    <-chan struct{} // closed: the copy stops (the store closes)
	f       *os.File
	written int64
	wb      *writeback
	pace    *pacer
	buf     []byte // copyRange's, where the kernel cannot copy
	// readThrough: the kernel refused to copy (copyRange).
	readThrough bool
	ranged      int64 // bytes ReadFrom copied by range (the rest by io.Copy)
}

func newSpoolWriter(ctx context.Context, stop <-chan struct{}, f *os.File) *spoolWriter {
	return &spoolWriter{ctx: ctx, stop: stop, f: f, wb: newWriteback(f), pace: newPacer(), readThrough: !kernelCopy}
}

// kernelCopy is off in tests of the read-through copy.
var kernelCopy = true

func (w *spoolWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.wrote(n)
	return n, err
}

func (w *spoolWriter) wrote(n int) {
	w.written += int64(n)
	w.wb.upTo(w.written)
	w.pace.add(n)
}

// ReadFrom copies r to the spool. WriteTo hands it the store's data pages
// as an io.LimitedReader of an io.SectionReader of the store's file: those
// are copied from the file by range; any other reader is read through.
func (w *spoolWriter) ReadFrom(r io.Reader) (int64, error) {
	src, off, n, ok := fileRange(r)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r) // the struct hides ReadFrom
	}
	total, err := w.copyFrom(src, off, n)
	w.ranged += total
	// Leave r where a read through it would have left it.
	lr := r.(*io.LimitedReader)
	lr.N -= total
	if _, serr := lr.R.(*io.SectionReader).Seek(total, io.SeekCurrent); err == nil {
		err = serr
	}
	return total, err
}

// copyFrom copies n bytes of src from off, a chunk at a time, until done
// or stopped.
func (w *spoolWriter) copyFrom(src *os.File, off, n int64) (int64, error) {
	var total int64
	for total < n {
		if err := stopped(w.ctx, w.stop); err != nil {
			return total, err
		}
		m, err := w.copyRange(src, off+total, int(min(n-total, paceChunk)))
		total += int64(m)
		w.wrote(m)
		if err != nil {
			return total, err
		}
		if m == 0 {
			return total, io.ErrUnexpectedEOF
		}
	}
	return total, nil
}

// stopped is the error that ends a copy: ctx's, or errClosing once stop
// is closed.
func stopped(ctx context.Context, stop <-chan struct{}) error {
	select {
	case <-stop:
		return errClosing
	default:
		return ctx.Err()
	}
}

// CopyTo writes the snapshot to f (at its offset, normally a new file) as
// the spool was written, a chunk at a time at the disk's gentle pace and
// pausing for the registers, and syncs it: a scheduled backup of a large
// store does not stall receipts by dirtying the whole store at once. It
// stops when ctx ends.
func (sn *Snapshot) CopyTo(ctx context.Context, f *os.File) error {
	if _, err := newSpoolWriter(ctx, nil, f).copyFrom(sn.f, 0, sn.Size); err != nil {
		return err
	}
	return f.Sync()
}

// fileRange unwraps the reader Tx.WriteTo passes to io.CopyN into the file
// and the range of it still to read.
func fileRange(r io.Reader) (f *os.File, off, n int64, ok bool) {
	lr, ok := r.(*io.LimitedReader)
	if !ok {
		return nil, 0, 0, false
	}
	sr, ok := lr.R.(*io.SectionReader)
	if !ok {
		return nil, 0, 0, false
	}
	outer, base, size := sr.Outer()
	f, ok = outer.(*os.File)
	if !ok {
		return nil, 0, 0, false
	}
	pos, err := sr.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, 0, false
	}
	return f, base + pos, min(lr.N, size-pos), true
}

// readCopy copies n bytes of src at off to the spool through a buffer.
func (w *spoolWriter) readCopy(src *os.File, off int64, n int) (int, error) {
	if len(w.buf) < n {
		w.buf = make([]byte, n)
	}
	m, err := src.ReadAt(w.buf[:n], off)
	if errors.Is(err, io.EOF) && m > 0 {
		err = nil
	}
	if m == 0 {
		return 0, err
	}
	k, werr := w.f.Write(w.buf[:m])
	if werr != nil {
		return k, werr
	}
	return k, err
}

// spoolSHA256 reads the spool back (from the page cache) for its SHA-256,
// a pacer's chunk at a time.
func spoolSHA256(ctx context.Context, stop <-chan struct{}, f *os.File, size int64) (sum [sha256.Size]byte, err error) {
	h := sha256.New()
	buf := make([]byte, paceChunk)
	pace := newPacer()
	for off := int64(0); off < size; {
		if err := stopped(ctx, stop); err != nil {
			return sum, err
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n == 0 && err != nil {
			return sum, err
		}
		h.Write(buf[:n])
		off += int64(n)
		pace.add(n)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
