package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// Repeated upstream polls. The daemon asks the upstream for its lists every
// sync interval (10 s by default) and, on a quiet day, gets the same bytes
// back every time. Such a poll is not written as a new entry with its body:
// the entry of the first identical answer gets a repeat count and the time
// of the latest one. An answer that differs (or a poll after that entry was
// pruned) is an entry of its own again, so the journal still shows every
// change, in order.
//
// The bucket holds two kinds of keys:
//
//	'p' + poll key -> seq (8 bytes) + sha256 of the answer: the newest entry of each poll
//	'r' + seq (8)  -> repeats (8 bytes) + last time (8 bytes, unix ns)
//
// A poll key is kind, method, path and query; only the daemon's own
// periodic polls fold (hello, and the lists without number=), so the keys
// stay a handful whatever the journal holds.
var bucketJournalRepeats = []byte("journal.repeats")

// foldPolls is off only in the measurement of what folding saves
// (journal_repeats_internal_test.go).
var foldPolls = true

// repeatsCleanup bounds the stale repeat records one append deletes.
const repeatsCleanup = 1000

// pollKey is the key an upstream poll folds under, or "" when e is not a
// periodic poll.
func pollKey(e *shopbridge.JournalEntry) string {
	if e.Client != "upstream" || e.Method != "GET" || e.ReqReceipt != "" || len(e.ReqBody) > 0 {
		return ""
	}
	switch e.Kind {
	case shopbridge.KindUpstreamHello:
	case shopbridge.KindUpstreamList:
		if strings.Contains(e.Query, "number=") {
			return "" // a read-through for one bill: not a periodic poll
		}
	default:
		return ""
	}
	return e.Kind + "\x00" + e.Method + "\x00" + e.Path + "\x00" + e.Query
}

// answerHash covers everything of a poll's entry but its time and duration.
func answerHash(e *shopbridge.JournalEntry) [32]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.Status))
	h.Write(n[:])
	for _, s := range [...]string{e.Device, e.Source, e.Note} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write(e.RespBody)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func repeatKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'r'}, seq) }

// foldRepeats takes out of entries the polls answered exactly as the
// previous identical poll still in the journal, counting them on that
// entry; it returns the entries to write, which get sequence numbers from
// seq+1 on. first is the oldest sequence number in the journal (seq+1
// when it is empty).
func foldRepeats(tx *bolt.Tx, entries []shopbridge.JournalEntry, seq, first uint64) ([]shopbridge.JournalEntry, error) {
	rep := tx.Bucket(bucketJournalRepeats)
	if rep == nil || !foldPolls {
		return entries, nil
	}
	// keep is entries itself until the first fold: a batch of terminal
	// calls (the usual one, thousands under load) is not copied.
	keep, kept := entries, 0
	for i := range entries {
		e := &entries[i]
		if key := pollKey(e); key != "" {
			folded, err := foldPoll(rep, e, key, seq+uint64(kept)+1, seq, first)
			if err != nil {
				return nil, err
			}
			if folded {
				if kept == i {
					keep = append(make([]shopbridge.JournalEntry, 0, len(entries)-1), entries[:i]...)
				}
				continue
			}
		}
		if kept != i {
			keep = append(keep, *e)
		}
		kept++
	}
	keep = keep[:kept]
	// Repeat records of pruned entries go, a bounded number per append
	// (collected first: deleting under a cursor skips keys).
	var stale [][]byte
	c := rep.Cursor()
	for k, _ := c.Seek([]byte{'r'}); k != nil && len(stale) < repeatsCleanup; k, _ = c.Next() {
		if k[0] != 'r' || len(k) != 9 || binary.BigEndian.Uint64(k[1:]) >= first {
			break
		}
		stale = append(stale, append([]byte(nil), k...))
	}
	for _, k := range stale {
		if err := rep.Delete(k); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

// foldPoll counts poll e, under key, on the newest entry of the same poll
// when e's answer is that entry's, and reports whether it did; otherwise e
// becomes the poll's newest entry, as sequence number next.
func foldPoll(rep *bolt.Bucket, e *shopbridge.JournalEntry, key string, next, seq, first uint64) (bool, error) {
	pk := append([]byte{'p'}, key...)
	sum := answerHash(e)
	if v := rep.Get(pk); len(v) == 40 && string(v[8:]) == string(sum[:]) {
		prev := binary.BigEndian.Uint64(v[:8])
		// One of this batch's is always there; an older one unless pruned.
		if prev > seq || prev >= first {
			n, _ := readRepeat(rep, prev)
			return true, rep.Put(repeatKey(prev), repeatValue(n+1, e.Time))
		}
	}
	v := binary.BigEndian.AppendUint64(nil, next)
	return false, rep.Put(pk, append(v, sum[:]...))
}

func repeatValue(n uint64, last time.Time) []byte {
	v := binary.BigEndian.AppendUint64(nil, n)
	return binary.BigEndian.AppendUint64(v, uint64(last.UnixNano()))
}

// readRepeat is the repeat count and last time of entry seq.
func readRepeat(rep *bolt.Bucket, seq uint64) (uint64, time.Time) {
	if rep == nil {
		return 0, time.Time{}
	}
	v := rep.Get(repeatKey(seq))
	if len(v) != 16 {
		return 0, time.Time{}
	}
	return binary.BigEndian.Uint64(v[:8]), time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))
}

// addRepeats fills in an entry's repeats, for the upstream's entries.
func addRepeats(tx *bolt.Tx, e *shopbridge.JournalEntry) {
	if e.Client != "upstream" {
		return
	}
	if n, last := readRepeat(tx.Bucket(bucketJournalRepeats), e.Seq); n > 0 {
		e.Repeats, e.LastTime = int(n), last
	}
}
