package storage

import (
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// journalRecord is how an entry is kept: bodies as strings, which JSON keeps
// readable (and small) for the UTF-8 text they almost always are.
type journalRecord struct {
	T      int64  `json:"t"`
	Client string `json:"c,omitempty"`
	Device string `json:"d,omitempty"`
	Kind   string `json:"k"`
	Method string `json:"m,omitempty"`
	Path   string `json:"p,omitempty"`
	Query  string `json:"q,omitempty"`
	Req    string `json:"rq,omitempty"`
	Status int    `json:"s,omitempty"`
	Resp   string `json:"rs,omitempty"`
	Dur    int64  `json:"ns,omitempty"`
	Source string `json:"src,omitempty"`
	Note   string `json:"n,omitempty"`
}

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

// AppendJournal writes entries in one commit.
func (s *Store) AppendJournal(entries []shopbridge.JournalEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		j, meta := tx.Bucket(bucketJournal), tx.Bucket(bucketMeta)
		j.FillPercent = 1 // append-only keys: pack pages full
		size := getInt(meta, keyJournalBytes)
		for _, e := range entries {
			seq, err := j.NextSequence()
			if err != nil {
				return err
			}
			v, err := json.Marshal(journalRecord{T: e.Time.UnixNano(), Client: e.Client, Device: e.Device,
				Kind: e.Kind, Method: e.Method, Path: e.Path, Query: e.Query, Req: string(e.ReqBody),
				Status: e.Status, Resp: string(e.RespBody), Dur: int64(e.Duration), Source: e.Source, Note: e.Note})
			if err != nil {
				return err
			}
			if err := j.Put(seqKey(seq), v); err != nil {
				return err
			}
			size += int64(8 + len(v))
		}
		return putInt(meta, keyJournalBytes, size)
	})
}

func decodeJournal(k, v []byte) (shopbridge.JournalEntry, error) {
	var r journalRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return shopbridge.JournalEntry{}, err
	}
	e := shopbridge.JournalEntry{Seq: binary.BigEndian.Uint64(k), Time: time.Unix(0, r.T), Client: r.Client,
		Device: r.Device, Kind: r.Kind, Method: r.Method, Path: r.Path, Query: r.Query, Status: r.Status,
		Duration: time.Duration(r.Dur), Source: r.Source, Note: r.Note}
	if r.Req != "" {
		e.ReqBody = []byte(r.Req)
	}
	if r.Resp != "" {
		e.RespBody = []byte(r.Resp)
	}
	return e, nil
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
			e, err := decodeJournal(k, v)
			if err != nil {
				continue // one unreadable entry must not hide the others
			}
			if !q.Since.IsZero() && e.Time.Before(q.Since) {
				break
			}
			if q.Kind != "" && e.Kind != q.Kind {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// PruneJournal deletes the oldest entries while they are older than maxAge or
// the journal is larger than maxBytes (a zero bound is no bound). It deletes
// at most limit entries per call so a big prune never holds the writer long.
func (s *Store) PruneJournal(now time.Time, maxAge time.Duration, maxBytes int64, limit int) (deleted int, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		deleted = 0
		j, meta := tx.Bucket(bucketJournal), tx.Bucket(bucketMeta)
		size := getInt(meta, keyJournalBytes)
		c := j.Cursor()
		for k, v := c.First(); k != nil && deleted < limit; k, v = c.First() {
			tooBig := maxBytes > 0 && size > maxBytes
			tooOld := false
			if maxAge > 0 {
				var r struct {
					T int64 `json:"t"`
				}
				if json.Unmarshal(v, &r) == nil {
					tooOld = now.Sub(time.Unix(0, r.T)) > maxAge
				}
			}
			if !tooBig && !tooOld {
				break
			}
			size -= int64(len(k) + len(v))
			if err := c.Delete(); err != nil {
				return err
			}
			deleted++
		}
		if size < 0 {
			size = 0
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
