package storage

import (
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
	b = append(b, journalBlockV1)
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

// blockNewest is the time of a block's newest entry.
func blockNewest(v []byte) (time.Time, error) {
	if len(v) < 9 || v[0] != journalBlockV1 {
		return time.Time{}, errBadBlock
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))), nil
}

// decodeBlock returns a block's entries, oldest first, copied out of v.
func decodeBlock(first uint64, v []byte) ([]shopbridge.JournalEntry, error) {
	if _, err := blockNewest(v); err != nil {
		return nil, err
	}
	r := &blockReader{v: v[9:]}
	n := r.uvarint()
	nb := r.uvarint()
	if r.err != nil || n > uint64(len(v)) || nb > uint64(len(v)) {
		return nil, errBadBlock
	}
	bodies := make([][]byte, nb)
	for i := range bodies {
		bodies[i] = append([]byte(nil), r.bytes()...)
	}
	body := func(ref uint64) []byte {
		if ref == 0 || ref > uint64(len(bodies)) {
			return nil
		}
		return bodies[ref-1]
	}
	es := make([]shopbridge.JournalEntry, n)
	var t int64
	for i := range es {
		t += r.varint()
		e := &es[i]
		e.Seq, e.Time = first+uint64(i), time.Unix(0, t)
		e.Status = int(r.uvarint())
		e.Duration = time.Duration(r.varint())
		e.ReqBody, e.RespBody = body(r.uvarint()), body(r.uvarint())
		for _, s := range [...]*string{&e.Client, &e.Device, &e.Kind, &e.Method, &e.Path, &e.Query, &e.Source, &e.Note, &e.ReqReceipt} {
			*s = string(r.bytes())
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("journal block %d: %w", first, r.err)
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
	var out []shopbridge.JournalEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJournal).Cursor()
		for k, v := c.Last(); k != nil && len(out) < q.Limit; k, v = c.Prev() {
			if newest, err := blockNewest(v); err == nil && !q.Since.IsZero() && newest.Before(q.Since) {
				break
			}
			es, err := decodeBlock(binary.BigEndian.Uint64(k), v)
			if err != nil {
				s.logger.Warn("skipping unreadable journal block", "key", binary.BigEndian.Uint64(k), "err", err)
				continue // one bad block must not hide the others
			}
			for i := len(es) - 1; i >= 0 && len(out) < q.Limit; i-- {
				e := es[i]
				if !q.Since.IsZero() && e.Time.Before(q.Since) {
					return nil
				}
				if q.Kind != "" && e.Kind != q.Kind {
					continue
				}
				if e.ReqReceipt != "" && e.ReqBody == nil {
					e.ReqBody = receiptBody(tx, e.ReqReceipt)
				}
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// receiptBody is a stored receipt's body, as much as the journal keeps.
func receiptBody(tx *bolt.Tx, eventID string) []byte {
	v := tx.Bucket(bucketReceipts).Get([]byte(eventID))
	if v == nil {
		return nil
	}
	r, err := decodeReceipt(eventID, v)
	if err != nil {
		return nil
	}
	if len(r.Body) > journalBodyMax {
		return r.Body[:journalBodyMax]
	}
	return r.Body
}

// journalBodyMax is how much of a body the journal shows.
const journalBodyMax = 64 << 10

// PruneJournal deletes the oldest entries while they are older than maxAge or
// the journal is larger than maxBytes (a zero bound is no bound). It deletes
// at most limit entries per call so a big prune never holds the writer long.
func (s *Store) PruneJournal(now time.Time, maxAge time.Duration, maxBytes int64, limit int) (deleted int, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		deleted = 0
		j, meta := tx.Bucket(bucketJournal), tx.Bucket(bucketMeta)
		size, count := getInt(meta, keyJournalBytes), getInt(meta, keyJournalEntries)
		c := j.Cursor()
		for deleted < limit {
			k, v := c.First()
			if k == nil {
				break
			}
			blockSize := int64(8 + len(v))
			es, err := decodeBlock(binary.BigEndian.Uint64(k), v)
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
				old := maxAge > 0 && now.Sub(es[drop].Time) > maxAge
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
