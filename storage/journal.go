package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// The journal is kept in blocks: one bbolt value per batch of entries, keyed
// by the sequence number of its first entry. A busy till writes thousands
// of entries a second; one Put per batch instead of per entry, a compact
// binary encoding and storing identical bodies once per block (registers
// poll the same list and load the same bills over and over) keep the writer
// cheap enough that journaling costs terminals almost nothing.
//
// Block layout: version byte, newest entry time (8 bytes, unix ns), uvarint
// entry count, uvarint body count, the bodies (uvarint length + bytes), then
// per entry: varint time, uvarint status, varint duration, uvarint request
// and answer body index+1 (0: none), and the strings client, device, kind,
// method, path, query, source, note (uvarint length + bytes).
const journalBlockV1 = 2

// journalBlockV2 is V1 with, after each entry's time, a varint: its steady
// time minus its time (see JournalEntry.Steady), 0 when they agree.
const journalBlockV2 = 3

// journalBlockMax is the body bytes after which a block is cut.
const journalBlockMax = 1 << 20

var (
	keyJournalSeq     = []byte("journal_seq")
	keyJournalEntries = []byte("journal_entries")
)

func getInt(b *bolt.Bucket, k []byte) int64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func putInt(b *bolt.Bucket, k []byte, n int64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeBlock(es []shopbridge.JournalEntry) []byte {
	index := map[string]uint64{}
	var bodies [][]byte
	ref := func(body []byte) uint64 {
		if body == nil {
			return 0
		}
		if i, ok := index[string(body)]; ok {
			return i
		}
		bodies = append(bodies, body)
		i := uint64(len(bodies))
		index[string(body)] = i
		return i
	}
	refs := make([][2]uint64, len(es))
	size := 32
	for i, e := range es {
		refs[i] = [2]uint64{ref(e.ReqBody), ref(e.RespBody)}
		size += 64 + len(e.Client) + len(e.Device) + len(e.Kind) + len(e.Path) + len(e.Query) + len(e.Note)
	}
	for _, b := range bodies {
		size += 4 + len(b)
	}
	b := make([]byte, 0, size)
	b = append(b, journalBlockV2)
	b = binary.BigEndian.AppendUint64(b, uint64(es[len(es)-1].Time.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(es)))
	b = binary.AppendUvarint(b, uint64(len(bodies)))
	for _, body := range bodies {
		b = appendBytes(b, body)
	}
	var prev int64
	for i, e := range es {
		t := e.Time.UnixNano()
		b = binary.AppendVarint(b, t-prev)
		prev = t
		var off int64
		if !e.Steady.IsZero() {
			off = e.Steady.UnixNano() - t
		}
		b = binary.AppendVarint(b, off)
		b = binary.AppendUvarint(b, uint64(e.Status))
		b = binary.AppendVarint(b, int64(e.Duration))
		b = binary.AppendUvarint(b, refs[i][0])
		b = binary.AppendUvarint(b, refs[i][1])
		for _, s := range [...]string{e.Client, e.Device, e.Kind, e.Method, e.Path, e.Query, e.Source, e.Note, e.ReqReceipt} {
			b = appendString(b, s)
		}
	}
	return b
}

var errBadBlock = errors.New("bad journal block")

// blockReader reads a block's fields in order.
type blockReader struct {
	v   []byte
	err error
}

func (r *blockReader) uvarint() uint64 {
	n, k := binary.Uvarint(r.v)
	if k <= 0 {
		r.err, r.v = errBadBlock, nil
		return 0
	}
	r.v = r.v[k:]
	return n
}

func (r *blockReader) varint() int64 {
	n, k := binary.Varint(r.v)
	if k <= 0 {
		r.err, r.v = errBadBlock, nil
		return 0
	}
	r.v = r.v[k:]
	return n
}

func (r *blockReader) bytes() []byte {
	n := r.uvarint()
	if uint64(len(r.v)) < n {
		r.err, r.v = errBadBlock, nil
		return nil
	}
	b := r.v[:n]
	r.v = r.v[n:]
	return b
}

// blockHeader is the bytes before a block's counts: version and newest time.
const blockHeader = 9

// blockNewest is the time of a block's newest entry.
func blockNewest(v []byte) (time.Time, error) {
	if len(v) < blockHeader || (v[0] != journalBlockV1 && v[0] != journalBlockV2) {
		return time.Time{}, errBadBlock
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:blockHeader]))), nil
}

// maxBlockEntries reads a block's entry count (0 when unreadable: the block
// is then read and skipped with a warning).
func maxBlockEntries(v []byte) int {
	if len(v) < blockHeader+1 {
		return 0
	}
	n, k := binary.Uvarint(v[blockHeader:])
	if k <= 0 {
		return 0
	}
	return int(n)
}

// rawEntry is an entry read in place from a block: its slices point into
// the block and are valid only inside the transaction.
type rawEntry struct {
	seq             uint64
	time            int64 // unix ns
	steady          int64 // unix ns; time in a V1 block
	status          int
	duration        int64
	reqRef, respRef uint64    // body index+1; 0: none
	fields          [9][]byte // client, device, kind, method, path, query, source, note, receipt
}

const (
	fClient = iota
	fDevice
	fKind
	fMethod
	fPath
	fQuery
	fSource
	fNote
	fReceipt
)

// rawBlock is a block read in place: the one decoder of the block layout.
// Its slices point into the block, valid only inside the transaction; a
// rawBlock read again reuses them, so a scan over many blocks allocates
// nothing to read one once they have grown. Entries are copied out one by
// one (copyEntry), each body once however many entries share it.
type rawBlock struct {
	bodies  [][]byte
	entries []rawEntry
	copied  [][]byte // bodies copied out of the block, by index; nil: not yet
}

// read fills b from block v whose first entry has sequence number first,
// reusing b's slices.
func (b *rawBlock) read(first uint64, v []byte) error {
	if _, err := blockNewest(v); err != nil {
		return err
	}
	r := &blockReader{v: v[blockHeader:]}
	n := r.uvarint()
	nb := r.uvarint()
	if r.err != nil || n > uint64(len(v)) || nb > uint64(len(v)) {
		return errBadBlock
	}
	b.bodies = b.bodies[:0]
	for i := uint64(0); i < nb; i++ {
		b.bodies = append(b.bodies, r.bytes())
	}
	clear(b.copied)
	b.copied = append(b.copied[:0], make([][]byte, nb)...)
	b.entries = b.entries[:0]
	var t int64
	for i := uint64(0); i < n; i++ {
		var e rawEntry
		t += r.varint()
		e.seq, e.time, e.steady = first+i, t, t
		if v[0] == journalBlockV2 {
			e.steady += r.varint()
		}
		e.status = int(r.uvarint())
		e.duration = r.varint()
		e.reqRef, e.respRef = r.uvarint(), r.uvarint()
		for k := range e.fields {
			e.fields[k] = r.bytes()
		}
		b.entries = append(b.entries, e)
	}
	if r.err != nil {
		return fmt.Errorf("journal block %d: %w", first, r.err)
	}
	return nil
}

// body is body ref in place (nil for none).
func (b *rawBlock) body(ref uint64) []byte {
	if ref == 0 || ref > uint64(len(b.bodies)) {
		return nil
	}
	return b.bodies[ref-1]
}

// copyBody is body ref copied out of the block, once for all the entries
// that share it (nil for none or empty).
func (b *rawBlock) copyBody(ref uint64) []byte {
	v := b.body(ref)
	if len(v) == 0 {
		return nil
	}
	if b.copied[ref-1] == nil {
		b.copied[ref-1] = bytes.Clone(v)
	}
	return b.copied[ref-1]
}

// copyEntry copies e, one of b's entries, out of the transaction.
func (b *rawBlock) copyEntry(e *rawEntry) shopbridge.JournalEntry {
	s := func(i int) string { return string(e.fields[i]) }
	return shopbridge.JournalEntry{Seq: e.seq, Time: time.Unix(0, e.time), Steady: time.Unix(0, e.steady),
		Client: s(fClient), Device: s(fDevice), Kind: s(fKind), Method: s(fMethod), Path: s(fPath), Query: s(fQuery),
		Source: s(fSource), Note: s(fNote), ReqReceipt: s(fReceipt), Status: e.status, Duration: time.Duration(e.duration),
		ReqBody: b.copyBody(e.reqRef), RespBody: b.copyBody(e.respRef)}
}

// entry is copyEntry with what a reader of the journal sees besides: the
// request body from the stored receipt the entry names, and the repeats
// folded into it.
func (b *rawBlock) entry(tx *bolt.Tx, e *rawEntry) shopbridge.JournalEntry {
	out := b.copyEntry(e)
	if out.ReqReceipt != "" && out.ReqBody == nil {
		out.ReqBody = receiptBody(tx, out.ReqReceipt)
	}
	addRepeats(tx, &out)
	return out
}

// decode reads block v and returns its entries, oldest first, copied out
// of it: what retention rewrites.
func (b *rawBlock) decode(first uint64, v []byte) ([]shopbridge.JournalEntry, error) {
	if err := b.read(first, v); err != nil {
		return nil, err
	}
	es := make([]shopbridge.JournalEntry, len(b.entries))
	for i := range b.entries {
		es[i] = b.copyEntry(&b.entries[i])
	}
	return es, nil
}

// AppendJournal writes entries in one commit, as one block or, for very
// large bodies, a few.
func (s *Store) AppendJournal(entries []shopbridge.JournalEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		j, meta := tx.Bucket(bucketJournal), tx.Bucket(bucketMeta)
		j.FillPercent = 1 // keys only grow: pack pages full
		seq, size, count := getInt(meta, keyJournalSeq), getInt(meta, keyJournalBytes), getInt(meta, keyJournalEntries)
		first := uint64(seq) + 1 // the oldest entry still there; past the newest when none is
		if k, _ := j.Cursor().First(); k != nil {
			first = binary.BigEndian.Uint64(k)
		}
		entries, err := foldRepeats(tx, entries, uint64(seq), first)
		if err != nil {
			return err
		}
		for len(entries) > 0 {
			n, bodyBytes := 0, 0
			for n < len(entries) && (n == 0 || bodyBytes < journalBlockMax) {
				bodyBytes += len(entries[n].ReqBody) + len(entries[n].RespBody)
				n++
			}
			v := encodeBlock(entries[:n])
			if err := j.Put(seqKey(uint64(seq)+1), v); err != nil {
				return err
			}
			seq, size, count = seq+int64(n), size+int64(8+len(v)), count+int64(n)
			entries = entries[n:]
		}
		if err := putInt(meta, keyJournalSeq, seq); err != nil {
			return err
		}
		if err := putInt(meta, keyJournalEntries, count); err != nil {
			return err
		}
		return putInt(meta, keyJournalBytes, size)
	})
}

// JournalQuery selects journal entries.
type JournalQuery struct {
	Since time.Time // entries at or after; zero: all
	Kind  string    // only this kind; "" all
	Limit int       // at most this many, the newest; 0: 1000
}

// Journal returns entries newest first.
func (s *Store) Journal(q JournalQuery) ([]shopbridge.JournalEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	var since int64
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	var out []shopbridge.JournalEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJournal).Cursor()
		var b rawBlock
		for k, v := c.Last(); k != nil && len(out) < q.Limit; k, v = c.Prev() {
			if newest, err := blockNewest(v); err == nil && since != 0 && newest.UnixNano() < since {
				break
			}
			if err := b.read(binary.BigEndian.Uint64(k), v); err != nil {
				s.logger.Warn("skipping unreadable journal block", "key", binary.BigEndian.Uint64(k), "err", err)
				continue // one bad block must not hide the others
			}
			for i := len(b.entries) - 1; i >= 0 && len(out) < q.Limit; i-- {
				e := &b.entries[i]
				if since != 0 && e.time < since {
					return nil
				}
				if q.Kind != "" && string(e.fields[fKind]) != q.Kind {
					continue
				}
				out = append(out, b.entry(tx, e))
			}
		}
		return nil
	})
	return out, err
}

// receiptBody is a stored receipt's body as the journal shows it: a copy
// of at most shopbridge.MaxJournalBody bytes; nil when there is none.
func receiptBody(tx *bolt.Tx, eventID string) []byte {
	body := receiptRawBody(tx, []byte(eventID))
	if len(body) == 0 {
		return nil
	}
	return bytes.Clone(body[:min(len(body), shopbridge.MaxJournalBody)])
}

// PruneJournal deletes the oldest entries while they are older than maxAge or
// the journal is larger than maxBytes (a zero bound is no bound). It deletes
// at most limit entries per call so a big prune never holds the writer long.
// Age is now minus an entry's steady time (JournalEntry.Steady; its wall
// time for entries written without one), so the daemon passes its steady
// clock and a wall clock jump never ages an entry.
func (s *Store) PruneJournal(now time.Time, maxAge time.Duration, maxBytes int64, limit int) (deleted int, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		deleted = 0
		j, meta := tx.Bucket(bucketJournal), tx.Bucket(bucketMeta)
		size, count := getInt(meta, keyJournalBytes), getInt(meta, keyJournalEntries)
		c := j.Cursor()
		var b rawBlock
		for deleted < limit {
			k, v := c.First()
			if k == nil {
				break
			}
			blockSize := int64(8 + len(v))
			es, err := b.decode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				s.logger.Warn("dropping unreadable journal block", "key", binary.BigEndian.Uint64(k), "err", err)
				if err := c.Delete(); err != nil {
					return err
				}
				size -= blockSize
				continue
			}
			// Drop entries from the front while they are too old or the
			// journal too big (a block's bytes are shared evenly).
			drop := 0
			for drop < len(es) && deleted+drop < limit {
				old := maxAge > 0 && now.Sub(es[drop].Steady) > maxAge
				big := maxBytes > 0 && size-blockSize*int64(drop)/int64(len(es)) > maxBytes
				if !old && !big {
					break
				}
				drop++
			}
			if drop == 0 {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			size -= blockSize
			if drop < len(es) {
				nv := encodeBlock(es[drop:])
				if err := j.Put(seqKey(es[drop].Seq), nv); err != nil {
					return err
				}
				size += int64(8 + len(nv))
			}
			count -= int64(drop)
			deleted += drop
		}
		if size < 0 {
			size = 0
		}
		if count < 0 {
			count = 0
		}
		if err := putInt(meta, keyJournalEntries, count); err != nil {
			return err
		}
		return putInt(meta, keyJournalBytes, size)
	})
	return deleted, err
}

// Terminal is a register seen by the daemon.
type Terminal struct {
	Device   string    `json:"device"`
	Address  string    `json:"address"`
	Store    string    `json:"store_uuid,omitempty"`
	LastSeen time.Time `json:"last_seen"`
	LastKind string    `json:"last_kind,omitempty"`
}

// PutTerminals records terminals seen, keyed by device (or address).
func (s *Store) PutTerminals(ts []Terminal) error {
	if len(ts) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTerminals)
		for _, t := range ts {
			key := t.Device
			if key == "" {
				key = t.Address
			}
			v, _ := json.Marshal(t)
			if err := b.Put([]byte(key), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Terminals returns every terminal seen.
func (s *Store) Terminals() ([]Terminal, error) {
	var out []Terminal
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTerminals).ForEach(func(k, v []byte) error {
			var t Terminal
			if json.Unmarshal(v, &t) == nil {
				out = append(out, t)
			}
			return nil
		})
	})
	return out, err
}
