package vmtest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Disk serves a disk image to QEMU over NBD (a unix socket) and behaves
// like a disk with a volatile write cache: a write is acknowledged at once
// and kept in memory; only a flush puts it in the image. Cut is the power
// failure: every sector written since the last flush independently reaches
// the image or is lost, and a sector overwritten before a flush may have
// reached the image in its older version. That is what a real disk may do
// and what a file system and bbolt must survive; a QEMU drive on a plain
// file cannot show it, because every write QEMU has made outlives QEMU in
// the host's page cache.
//
// FUA is not offered, so QEMU turns a guest's FUA write into a write and a
// flush; trims and write-zeroes are not offered either.
type Disk struct {
	// FlushDelay is how long a flush takes; set it before the guest
	// starts. Real disks take from a fraction of a millisecond (SSDs) to
	// tens (spinning disks).
	FlushDelay time.Duration

	image  *os.File
	size   int64
	ln     net.Listener
	logErr func(error)

	mu      sync.Mutex
	powered *sync.Cond // signalled by Cut; waited on while off
	off     bool       // between PowerOff and Cut
	rng     *rand.Rand
	cache   map[int64][]byte // sector -> content not yet flushed
	conn    net.Conn         // the connection being served, nil when none
	stats   DiskStats
	wg      sync.WaitGroup
}

// DiskStats counts what a Disk did.
type DiskStats struct {
	Reads, Writes, Flushes int
	WrittenBytes           int64
	Dirty                  int // sectors not flushed now
	CutKept, CutLost       int // unflushed sectors that reached the image or were lost at cuts
	EarlyOld               int // older versions of overwritten sectors written before a flush
}

// SectorSize is the disk's logical sector, the unit a power cut keeps or
// loses whole (disks write a sector atomically).
const SectorSize = 512

// ServeDisk serves the image (its size a multiple of SectorSize) on a unix
// socket at sock. seed makes the cuts' choices repeatable. logErr, if not
// nil, receives protocol errors of a connection.
func ServeDisk(image, sock string, seed uint64, logErr func(error)) (*Disk, error) {
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size()%SectorSize != 0 || fi.Size() == 0 {
		f.Close()
		return nil, fmt.Errorf("disk image %s: size %d is not a positive multiple of %d", image, fi.Size(), SectorSize)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		f.Close()
		return nil, err
	}
	if logErr == nil {
		logErr = func(error) {}
	}
	d := &Disk{image: f, size: fi.Size(), ln: ln, logErr: logErr, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		cache: map[int64][]byte{}}
	d.powered = sync.NewCond(&d.mu)
	d.wg.Add(1)
	go d.accept()
	return d, nil
}

func (d *Disk) accept() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		if d.conn != nil {
			// One machine owns the disk; a second connection is a test bug.
			d.mu.Unlock()
			d.logErr(errors.New("nbd: a second connection while one is served; refused"))
			c.Close()
			continue
		}
		d.conn = c
		d.mu.Unlock()
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.serve(c); err != nil && !gone(err) {
				d.logErr(err)
			}
			c.Close()
			d.mu.Lock()
			if d.conn == c {
				d.conn = nil
			}
			d.mu.Unlock()
		}()
	}
}

// gone reports whether err only says that the peer went away, as a killed
// QEMU does.
func gone(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// PowerOff is the moment of a power failure for the disk: from now on
// nothing more reaches the image, not even a flush already under way, and
// no request is answered. Call it just before killing the machine (whose
// requests then simply hang for the moment it still lives), then Cut.
func (d *Disk) PowerOff() {
	d.mu.Lock()
	d.off = true
	d.mu.Unlock()
}

// Cut is the end of a power failure, once the machine using the disk is
// dead: the connection ends, and each sector written since the last flush
// is either in the image or lost, at random. It returns the sectors kept
// and lost, and leaves the disk ready for the next boot. Without PowerOff
// before, it powers off first.
func (d *Disk) Cut() (kept, lost int, err error) {
	d.mu.Lock()
	d.off = true
	c := d.conn
	d.conn = nil
	d.powered.Broadcast()
	d.mu.Unlock()
	if c != nil {
		c.Close()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.off = false
	for s, b := range d.cache {
		if d.rng.IntN(2) == 0 {
			lost++
			continue
		}
		if _, werr := d.image.WriteAt(b, s*SectorSize); werr != nil && err == nil {
			err = werr
		}
		kept++
	}
	clear(d.cache)
	d.stats.CutKept += kept
	d.stats.CutLost += lost
	return kept, lost, err
}

// Stats returns the counts so far.
func (d *Disk) Stats() DiskStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.stats
	st.Dirty = len(d.cache)
	return st
}

// Close stops serving; unflushed sectors are written to the image, as a
// disk that keeps its power writes its cache out.
func (d *Disk) Close() error {
	d.ln.Close()
	d.mu.Lock()
	if d.conn != nil {
		d.conn.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
	err := d.flushLocked()
	if cerr := d.image.Close(); err == nil {
		err = cerr
	}
	return err
}

// flushLocked writes every cached sector to the image. d.mu is held (or no
// connection is left).
func (d *Disk) flushLocked() error {
	for s, b := range d.cache {
		if _, err := d.image.WriteAt(b, s*SectorSize); err != nil {
			return err
		}
	}
	clear(d.cache)
	// The image is a file on a host that does not lose power in this test:
	// a host fsync would only cost time.
	return nil
}

// readAt fills p from offset off as the guest sees the disk: the image
// with the cached sectors over it.
func (d *Disk) readAt(p []byte, off int64) error {
	if _, err := d.image.ReadAt(p, off); err != nil {
		return err
	}
	for s := off / SectorSize; s*SectorSize < off+int64(len(p)); s++ {
		b, ok := d.cache[s]
		if !ok {
			continue
		}
		lo, hi := max(s*SectorSize, off), min((s+1)*SectorSize, off+int64(len(p)))
		copy(p[lo-off:hi-off], b[lo-s*SectorSize:hi-s*SectorSize])
	}
	return nil
}

// writeAt puts p at offset off into the cache.
func (d *Disk) writeAt(p []byte, off int64) error {
	for s := off / SectorSize; s*SectorSize < off+int64(len(p)); s++ {
		lo, hi := max(s*SectorSize, off), min((s+1)*SectorSize, off+int64(len(p)))
		old, cached := d.cache[s]
		if cached && d.rng.IntN(2) == 0 {
			// The disk had already written the older version out.
			if _, err := d.image.WriteAt(old, s*SectorSize); err != nil {
				return err
			}
			d.stats.EarlyOld++
		}
		b := make([]byte, SectorSize)
		if lo != s*SectorSize || hi != (s+1)*SectorSize {
			// Part of a sector: the rest stays as the guest saw it.
			if err := d.readAt(b, s*SectorSize); err != nil {
				return err
			}
		}
		copy(b[lo-s*SectorSize:hi-s*SectorSize], p[lo-off:hi-off])
		d.cache[s] = b
	}
	return nil
}

// The NBD protocol, fixed newstyle negotiation and simple replies only
// (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).
const (
	nbdMagic          = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic       = 0x49484156454f5054 // "IHAVEOPT"
	nbdOptReplyMagic  = 0x3e889045565a9
	nbdRequestMagic   = 0x25609513
	nbdSimpleReply    = 0x67446698
	nbdFlagFixedNew   = 1 << 0
	nbdFlagNoZeroes   = 1 << 1
	nbdOptExportName  = 1
	nbdOptAbort       = 2
	nbdOptInfo        = 6
	nbdOptGo          = 7
	nbdRepAck         = 1
	nbdRepInfo        = 3
	nbdRepErrUnsup    = 1<<31 | 1
	nbdRepErrInvalid  = 1<<31 | 3
	nbdInfoExport     = 0
	nbdInfoBlockSize  = 3
	nbdFlagHasFlags   = 1 << 0
	nbdFlagSendFlush  = 1 << 2
	nbdCmdRead        = 0
	nbdCmdWrite       = 1
	nbdCmdDisc        = 2
	nbdCmdFlush       = 3
	nbdCmdFlagFUA     = 1 << 0
	nbdEIO            = 5
	nbdEINVAL         = 22
	nbdENOSPC         = 28
	nbdMaxPayload     = 32 << 20
	nbdTransmitFlags  = nbdFlagHasFlags | nbdFlagSendFlush
	nbdMaxOptionBytes = 64 << 10
)

// live reports whether the disk still serves connection c; while the
// power is off it waits, answering nothing, until Cut ends the connection.
// d.mu is held.
func (d *Disk) live(c net.Conn) bool {
	for d.off && d.conn == c {
		d.powered.Wait()
	}
	return d.conn == c && !d.off
}

func (d *Disk) serve(c net.Conn) error {
	r, w := bufio.NewReaderSize(c, 1<<20), bufio.NewWriterSize(c, 1<<20)
	if err := d.negotiate(r, w); err != nil {
		return fmt.Errorf("nbd negotiation: %w", err)
	}
	var hdr [28]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		if m := binary.BigEndian.Uint32(hdr[0:]); m != nbdRequestMagic {
			return fmt.Errorf("nbd: bad request magic %#x", m)
		}
		flags, typ := binary.BigEndian.Uint16(hdr[4:]), binary.BigEndian.Uint16(hdr[6:])
		handle, off, n := binary.BigEndian.Uint64(hdr[8:]), int64(binary.BigEndian.Uint64(hdr[16:])), int64(binary.BigEndian.Uint32(hdr[24:]))
		var payload []byte
		if typ == nbdCmdWrite {
			if n > nbdMaxPayload {
				return fmt.Errorf("nbd: write of %d bytes is over the limit", n)
			}
			payload = make([]byte, n)
			if _, err := io.ReadFull(r, payload); err != nil {
				return err
			}
		}
		if typ == nbdCmdDisc { // a clean close: the cache goes to the image
			d.mu.Lock()
			defer d.mu.Unlock()
			if !d.live(c) {
				return net.ErrClosed
			}
			return d.flushLocked()
		}
		var data []byte
		errno := uint32(0)
		d.mu.Lock()
		if !d.live(c) {
			d.mu.Unlock()
			return net.ErrClosed
		}
		switch {
		case typ == nbdCmdRead && (n > nbdMaxPayload || off < 0 || off+n > d.size):
			errno = nbdEINVAL
		case typ == nbdCmdRead:
			data = make([]byte, n)
			if err := d.readAt(data, off); err != nil {
				d.logErr(fmt.Errorf("nbd read %d@%d: %w", n, off, err))
				errno, data = nbdEIO, nil
			}
			d.stats.Reads++
		case typ == nbdCmdWrite && (off < 0 || off+n > d.size):
			errno = nbdENOSPC
		case typ == nbdCmdWrite:
			err := d.writeAt(payload, off)
			if err == nil && flags&nbdCmdFlagFUA != 0 {
				err = d.flushLocked() // not offered; more than asked is still correct
			}
			if err != nil {
				d.logErr(fmt.Errorf("nbd write %d@%d: %w", n, off, err))
				errno = nbdEIO
			}
			d.stats.Writes++
			d.stats.WrittenBytes += n
		case typ == nbdCmdFlush:
			if d.FlushDelay > 0 {
				// A flush takes the disk a while, and a cut in the
				// meantime finds the writes still only in the cache.
				d.mu.Unlock()
				time.Sleep(d.FlushDelay)
				d.mu.Lock()
				if !d.live(c) {
					d.mu.Unlock()
					return net.ErrClosed
				}
			}
			if err := d.flushLocked(); err != nil {
				d.logErr(fmt.Errorf("nbd flush: %w", err))
				errno = nbdEIO
			}
			d.stats.Flushes++
		default:
			errno = nbdEINVAL
		}
		d.mu.Unlock()
		var rep [16]byte
		binary.BigEndian.PutUint32(rep[0:], nbdSimpleReply)
		binary.BigEndian.PutUint32(rep[4:], errno)
		binary.BigEndian.PutUint64(rep[8:], handle)
		w.Write(rep[:])
		w.Write(data)
		// Answer at once unless more requests are already waiting: QEMU
		// keeps several in flight.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func (d *Disk) negotiate(r *bufio.Reader, w *bufio.Writer) error {
	var b [18]byte
	binary.BigEndian.PutUint64(b[0:], nbdMagic)
	binary.BigEndian.PutUint64(b[8:], nbdOptMagic)
	binary.BigEndian.PutUint16(b[16:], nbdFlagFixedNew|nbdFlagNoZeroes)
	w.Write(b[:])
	if err := w.Flush(); err != nil {
		return err
	}
	var cf [4]byte
	if _, err := io.ReadFull(r, cf[:]); err != nil {
		return err
	}
	noZeroes := binary.BigEndian.Uint32(cf[:])&nbdFlagNoZeroes != 0
	for {
		var oh [16]byte
		if _, err := io.ReadFull(r, oh[:]); err != nil {
			return err
		}
		if m := binary.BigEndian.Uint64(oh[0:]); m != nbdOptMagic {
			return fmt.Errorf("bad option magic %#x", m)
		}
		opt, n := binary.BigEndian.Uint32(oh[8:]), binary.BigEndian.Uint32(oh[12:])
		if n > nbdMaxOptionBytes {
			return fmt.Errorf("option %d: %d bytes of data", opt, n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return err
		}
		switch opt {
		case nbdOptExportName: // the old way in: size and flags, no reply header
			var e [10]byte
			binary.BigEndian.PutUint64(e[0:], uint64(d.size))
			binary.BigEndian.PutUint16(e[8:], nbdTransmitFlags)
			w.Write(e[:])
			if !noZeroes {
				w.Write(make([]byte, 124))
			}
			return w.Flush()
		case nbdOptAbort:
			optReply(w, opt, nbdRepAck, nil)
			w.Flush()
			return errors.New("client aborted")
		case nbdOptInfo, nbdOptGo:
			infos, ok := parseGo(data)
			if !ok {
				optReply(w, opt, nbdRepErrInvalid, nil)
				if err := w.Flush(); err != nil {
					return err
				}
				continue
			}
			var e [12]byte
			binary.BigEndian.PutUint16(e[0:], nbdInfoExport)
			binary.BigEndian.PutUint64(e[2:], uint64(d.size))
			binary.BigEndian.PutUint16(e[10:], nbdTransmitFlags)
			optReply(w, opt, nbdRepInfo, e[:])
			if infos[nbdInfoBlockSize] {
				var bs [14]byte
				binary.BigEndian.PutUint16(bs[0:], nbdInfoBlockSize)
				binary.BigEndian.PutUint32(bs[2:], SectorSize)
				binary.BigEndian.PutUint32(bs[6:], 4096)
				binary.BigEndian.PutUint32(bs[10:], nbdMaxPayload)
				optReply(w, opt, nbdRepInfo, bs[:])
			}
			optReply(w, opt, nbdRepAck, nil)
			if err := w.Flush(); err != nil {
				return err
			}
			if opt == nbdOptGo {
				return nil
			}
		default: // structured replies, meta contexts, lists, TLS: not offered
			optReply(w, opt, nbdRepErrUnsup, nil)
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// parseGo reads the data of NBD_OPT_GO/INFO: the export name (any is
// served) and the information types asked for.
func parseGo(b []byte) (infos map[uint16]bool, ok bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(b))
	if len(b) < 4+n+2 {
		return nil, false
	}
	b = b[4+n:]
	k := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) != 2*k {
		return nil, false
	}
	infos = map[uint16]bool{}
	for i := 0; i < k; i++ {
		infos[binary.BigEndian.Uint16(b[2*i:])] = true
	}
	return infos, true
}

func optReply(w *bufio.Writer, opt, typ uint32, data []byte) {
	var h [20]byte
	binary.BigEndian.PutUint64(h[0:], nbdOptReplyMagic)
	binary.BigEndian.PutUint32(h[8:], opt)
	binary.BigEndian.PutUint32(h[12:], typ)
	binary.BigEndian.PutUint32(h[16:], uint32(len(data)))
	w.Write(h[:])
	w.Write(data)
}
