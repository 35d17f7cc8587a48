package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The page check reads the store file with pread (never through bbolt's
// memory map) and checks the structure bbolt trusts blindly: the meta
// pages, the free list, and every page of the tree it can reach, each
// page's header, bounds and key order. bbolt indexes into its map with the
// numbers it finds on a page; a damaged page sends it past the end of a
// page or the file, where it panics ("invalid freelist page", "index out of
// range"), and a read past the end of the file or of a failing disk is a
// SIGBUS that no recover catches (fatal error: fault). Reading with pread
// turns all of these into errors: a short read, EIO, or a number out of
// range that this code tests before it uses it.
//
// The layout read here is bbolt's file format, version 2 (bbolt 1.x,
// internal/common): a 16-byte page header (id u64, flags u16, count u16,
// overflow u32), then elements of 16 bytes; a meta page's body (magic,
// version, page size, flags, root bucket {root, sequence}, freelist, high
// water page, txid, FNV-64a checksum of what precedes it).

const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16
	elementSize      = 16
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	noFreelist       = ^uint64(0)
)

// DamageError is a store file whose structure is damaged: bbolt cannot be
// trusted to read it. What says what is wrong, for the owner's one line.
type DamageError struct {
	Path string
	What string
	Line string // the whole line, when it is not the usual one
}

func (e *DamageError) Error() string {
	if e.Line != "" {
		return e.Line
	}
	return fmt.Sprintf("store %s is damaged: %s; stop shopbridge and restore the newest backup "+
		"with `shopbridge restore FILE` (see docs/recovery.md)", e.Path, e.What)
}

// IsDamage reports whether err says the store's file is damaged.
func IsDamage(err error) bool {
	var d *DamageError
	return errors.As(err, &d)
}

// boltMeta is a meta page's body.
type boltMeta struct {
	slot             int
	magic, version   uint32
	pageSize         uint32
	root, freelist   uint64
	highWater, txid  uint64
	checksum, summed uint64
}

func parseMeta(slot int, page []byte) (m boltMeta, err error) {
	m.slot = slot
	if len(page) < pageHeaderSize+64 {
		return m, fmt.Errorf("meta page %d is cut short", slot)
	}
	b := page[pageHeaderSize:]
	le := binary.LittleEndian
	m.magic, m.version, m.pageSize = le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:])
	m.root, m.freelist, m.highWater, m.txid = le.Uint64(b[16:]), le.Uint64(b[32:]), le.Uint64(b[40:]), le.Uint64(b[48:])
	m.checksum = le.Uint64(b[56:])
	h := fnv.New64a()
	h.Write(b[:56])
	m.summed = h.Sum64()
	switch {
	case m.magic != boltMagic:
		return m, fmt.Errorf("meta page %d has no bbolt marker", slot)
	case m.version != boltVersion:
		return m, fmt.Errorf("meta page %d has file format version %d, not %d", slot, m.version, boltVersion)
	case m.checksum != m.summed:
		return m, fmt.Errorf("meta page %d fails its checksum", slot)
	case m.pageSize < 512 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0:
		return m, fmt.Errorf("meta page %d has page size %d", slot, m.pageSize)
	}
	return m, nil
}

// pageCheck is one check of a store file.
type pageCheck struct {
	r      io.ReaderAt
	size   int64
	meta   boltMeta
	ps     int64
	budget int // pages left to read; <0: no limit
	read   int
	free   []bool
	seen   []bool
	buf    []byte
	kinds  []PageKind      // nil: not recorded
	stop   <-chan struct{} // closed: give up (the store closes)
	pace   *pacer          // the live check's, in the background; nil: none
}

var errStopped = errors.New("the check was stopped")

// PageKind is what a page of a store file holds, as PageMap tells it.
type PageKind byte

// Page kinds.
const (
	PageUnknown  PageKind = 0
	PageMeta     PageKind = 'm'
	PageFreelist PageKind = 'f'
	PageFree     PageKind = '-'
	PageBranch   PageKind = 'b'
	PageLeaf     PageKind = 'l'
	PageOverflow PageKind = 'o'
)

// PageMap checks the store file at path in full and tells what each page
// below its high water mark holds, and the page size: for tools and
// tests that need to know where a page lives.
func PageMap(path string) (kinds []PageKind, pageSize int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	m, err := readMetas(f, fi.Size())
	if err != nil {
		return nil, 0, err
	}
	c := &pageCheck{r: f, size: fi.Size(), meta: m, ps: int64(m.pageSize), budget: -1, kinds: []PageKind{}}
	_, err = c.run()
	return c.kinds, int(m.pageSize), err
}

// readMetas reads both meta pages as bbolt's Open does: the page size from
// meta 0, or the OS page size when meta 0 is bad.
func readMetas(r io.ReaderAt, size int64) (best boltMeta, err error) {
	if size == 0 {
		return best, errors.New("the file is empty (0 bytes)")
	}
	first := make([]byte, 4096)
	n, rerr := r.ReadAt(first, 0)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return best, fmt.Errorf("reading meta page 0: %w", rerr)
	}
	m0, err0 := parseMeta(0, first[:n])
	ps := int64(os.Getpagesize())
	if err0 == nil {
		ps = int64(m0.pageSize)
	}
	second := make([]byte, 4096)
	n, rerr = r.ReadAt(second, ps)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return best, fmt.Errorf("reading meta page 1: %w", rerr)
	}
	m1, err1 := parseMeta(1, second[:n])
	switch {
	case err0 != nil && err1 != nil:
		if m0.magic != boltMagic && m1.magic != boltMagic {
			return best, errors.New("it is not a bbolt store (neither meta page has bbolt's marker)")
		}
		return best, fmt.Errorf("both meta pages are bad (%v; %v)", err0, err1)
	case err0 != nil:
		// bbolt would fall back to meta 1, which may be the commit before
		// the last one: an acknowledged receipt could be gone unseen.
		return best, fmt.Errorf("%v (meta page 1 holds transaction %d, which may not be the last one)", err0, m1.txid)
	case err1 != nil:
		return best, fmt.Errorf("%v (meta page 0 holds transaction %d, which may not be the last one)", err1, m0.txid)
	case m0.pageSize != m1.pageSize:
		return best, fmt.Errorf("the meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
	}
	best = m0
	if m1.txid > m0.txid {
		best = m1
	}
	return best, nil
}

// checkPages checks the file read by r (size bytes) at the newest meta page,
// reading at most budget pages of the tree (<0: all of it). It returns
// whether it read the whole tree; an error says what is damaged.
func checkPages(r io.ReaderAt, size int64, budget int) (complete bool, err error) {
	m, err := readMetas(r, size)
	if err != nil {
		return false, err
	}
	return checkPagesAt(r, size, m, budget, nil)
}

func checkPagesAt(r io.ReaderAt, size int64, m boltMeta, budget int, stop <-chan struct{}) (complete bool, err error) {
	c := &pageCheck{r: r, size: size, meta: m, ps: int64(m.pageSize), budget: budget, stop: stop}
	if stop != nil {
		// The live check (checkLive) runs beside the registers.
		c.pace = newPacer()
	}
	return c.run()
}

func (c *pageCheck) run() (complete bool, err error) {
	m, size := c.meta, c.size
	if m.highWater < 2 {
		return false, fmt.Errorf("its meta page says it has %d pages", m.highWater)
	}
	if need := int64(m.highWater) * c.ps; need > size || need/c.ps != int64(m.highWater) {
		return false, fmt.Errorf("the file is cut short: %d bytes where the store needs %d", size, need)
	}
	c.free = make([]bool, m.highWater)
	c.seen = make([]bool, m.highWater)
	c.seen[0], c.seen[1] = true, true
	if c.kinds != nil {
		c.kinds = make([]PageKind, m.highWater)
		c.kinds[0], c.kinds[1] = PageMeta, PageMeta
	}
	if err := c.checkFreelist(); err != nil {
		return false, err
	}
	if err := c.walk(m.root); err != nil {
		return false, err
	}
	if c.budget == 0 {
		return false, nil
	}
	lost := 0
	for id := range c.seen {
		if !c.seen[id] && !c.free[id] {
			lost++
		}
	}
	if lost > 0 {
		return true, fmt.Errorf("%d pages are neither in use nor free", lost)
	}
	return true, nil
}

// page reads page id and its overflow pages.
func (c *pageCheck) page(id uint64, what string) ([]byte, error) {
	if id < 2 || id >= c.meta.highWater {
		return nil, fmt.Errorf("%s names page %d, outside the store (2..%d)", what, id, c.meta.highWater-1)
	}
	// One buffer for every page: nothing keeps a page past the next read.
	if int64(len(c.buf)) < c.ps {
		c.buf = make([]byte, c.ps)
	}
	head := c.buf[:c.ps]
	if _, err := c.r.ReadAt(head, int64(id)*c.ps); err != nil {
		return nil, fmt.Errorf("reading page %d: %w", id, err)
	}
	if got := binary.LittleEndian.Uint64(head); got != id {
		return nil, fmt.Errorf("page %d (%s) carries the number %d", id, what, got)
	}
	overflow := uint64(binary.LittleEndian.Uint32(head[12:]))
	if id+overflow >= c.meta.highWater {
		return nil, fmt.Errorf("page %d (%s) runs past the end of the store (%d overflow pages)", id, what, overflow)
	}
	c.read += int(overflow) + 1
	if overflow == 0 {
		return head, nil
	}
	n := int64(overflow+1) * c.ps
	if int64(len(c.buf)) < n {
		c.buf = append(c.buf[:c.ps], make([]byte, n-c.ps)...)
	}
	buf := c.buf[:n]
	if _, err := c.r.ReadAt(buf[c.ps:], int64(id+1)*c.ps); err != nil {
		return nil, fmt.Errorf("reading page %d: %w", id+1, err)
	}
	return buf, nil
}

func (c *pageCheck) checkFreelist() error {
	id := c.meta.freelist
	if id == noFreelist {
		return errors.New("its free list was not saved (shopbridge always saves it)")
	}
	p, err := c.page(id, "the meta page's free list")
	if err != nil {
		return err
	}
	if flags := binary.LittleEndian.Uint16(p[8:]); flags != freelistPageFlag {
		return fmt.Errorf("the free list page %d is not a free list page (flags %#x)", id, flags)
	}
	count, idx := uint64(binary.LittleEndian.Uint16(p[10:])), uint64(0)
	if count == 0xFFFF {
		count, idx = binary.LittleEndian.Uint64(p[pageHeaderSize:]), 1
	}
	if count > uint64(len(p)) || pageHeaderSize+(idx+count)*8 > uint64(len(p)) {
		return fmt.Errorf("the free list page %d claims %d entries, more than it holds", id, count)
	}
	overflow := uint64(binary.LittleEndian.Uint32(p[12:]))
	for i := id; i <= id+overflow; i++ {
		c.seen[i] = true
		c.kind(i, PageFreelist)
	}
	for i := range count {
		f := binary.LittleEndian.Uint64(p[pageHeaderSize+(idx+i)*8:])
		switch {
		case f < 2 || f >= c.meta.highWater:
			return fmt.Errorf("the free list names page %d, outside the store", f)
		case c.free[f]:
			return fmt.Errorf("the free list names page %d twice", f)
		case c.seen[f]:
			return fmt.Errorf("the free list names page %d, which holds the free list", f)
		}
		c.free[f] = true
		c.kind(f, PageFree)
	}
	return nil
}

func (c *pageCheck) kind(id uint64, k PageKind) {
	if c.kinds != nil && id < uint64(len(c.kinds)) {
		c.kinds[id] = k
	}
}

// walk checks the tree of the bucket whose root page is root, and the trees
// of the buckets inside it, depth first.
func (c *pageCheck) walk(root uint64) error {
	stack := []uint64{root}
	for steps := 1; len(stack) > 0; steps++ {
		if c.budget >= 0 && c.read >= c.budget {
			c.budget = 0
			return nil
		}
		if steps%1024 == 0 && c.stop != nil {
			select {
			case <-c.stop:
				return errStopped
			default:
			}
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if id < c.meta.highWater {
			switch {
			case c.seen[id]:
				return fmt.Errorf("page %d is used twice", id)
			case c.free[id]:
				return fmt.Errorf("page %d is in use and also on the free list", id)
			}
		}
		p, err := c.page(id, "the tree")
		if err != nil {
			return err
		}
		for i := uint64(0); i < uint64(len(p))/uint64(c.ps); i++ {
			if i > 0 && (c.seen[id+i] || c.free[id+i]) {
				return fmt.Errorf("overflow page %d of page %d is used twice or free", id+i, id)
			}
			c.seen[id+i] = true
			c.kind(id+i, PageOverflow)
		}
		if binary.LittleEndian.Uint16(p[8:]) == branchPageFlag {
			c.kind(id, PageBranch)
		} else {
			c.kind(id, PageLeaf)
		}
		children, err := c.elements(id, p, false)
		if err != nil {
			return err
		}
		stack = append(stack, children...)
		if c.pace != nil {
			c.pace.add(len(p))
		}
	}
	return nil
}

// elements checks the elements of page p (id; inline: p is a bucket's
// value) and returns the pages they lead to: a branch page's children, a
// leaf page's bucket roots.
func (c *pageCheck) elements(id uint64, p []byte, inline bool) ([]uint64, error) {
	le := binary.LittleEndian
	where := fmt.Sprintf("page %d", id)
	if inline {
		where = fmt.Sprintf("an inline bucket on page %d", id)
	}
	if len(p) < pageHeaderSize {
		return nil, fmt.Errorf("%s is cut short", where)
	}
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if flags != branchPageFlag && flags != leafPageFlag || inline && flags != leafPageFlag {
		return nil, fmt.Errorf("%s is not a tree page (flags %#x)", where, flags)
	}
	if pageHeaderSize+count*elementSize > len(p) {
		return nil, fmt.Errorf("%s claims %d elements, more than it holds", where, count)
	}
	if flags == branchPageFlag && count == 0 {
		return nil, fmt.Errorf("%s is an empty branch page", where)
	}
	var next []uint64
	var prev []byte
	for i := range count {
		at := pageHeaderSize + i*elementSize
		e := p[at : at+elementSize]
		var key, value []byte
		var child uint64
		if flags == branchPageFlag {
			pos, ksize := uint64(le.Uint32(e)), uint64(le.Uint32(e[4:]))
			if end := uint64(at) + pos + ksize; end > uint64(len(p)) {
				return nil, fmt.Errorf("%s: element %d runs past the page", where, i)
			}
			key, child = p[uint64(at)+pos:uint64(at)+pos+ksize], le.Uint64(e[8:])
		} else {
			eflags, pos, ksize, vsize := le.Uint32(e), uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
			if end := uint64(at) + pos + ksize + vsize; end > uint64(len(p)) {
				return nil, fmt.Errorf("%s: element %d runs past the page", where, i)
			}
			start := uint64(at) + pos
			key, value = p[start:start+ksize], p[start+ksize:start+ksize+vsize]
			if eflags&bucketLeafFlag != 0 {
				if len(value) < 16 {
					return nil, fmt.Errorf("%s: bucket %q has a short header", where, key)
				}
				if root := le.Uint64(value); root != 0 {
					next = append(next, root)
				} else {
					if inline {
						return nil, fmt.Errorf("%s: bucket %q nests inline in an inline bucket", where, key)
					}
					if _, err := c.elements(id, value[16:], true); err != nil {
						return nil, err
					}
				}
			}
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return nil, fmt.Errorf("%s: keys out of order at element %d", where, i)
		}
		prev = key
		if flags == branchPageFlag {
			next = append(next, child)
		}
	}
	return next, nil
}
