package storage

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// Journal pages for the operator console. A page reads a bounded amount of
// the journal however large it grows: it seeks by sequence number, reads
// blocks in place and stops after a scan budget.

// JournalScanBudget is how many journal entries one page request may look
// at before it answers with what it found and a cursor to go on from. It
// keeps a filtered search over a million entries from holding a reader (and
// the daemon's memory) for long.
const JournalScanBudget = 100000

// JournalScanBytes bounds the journal blocks one page request reads, for
// the same reasons: a block of big bodies holds few entries, and every
// block read is file pages mapped into the daemon.
const JournalScanBytes = 16 << 20

// JournalPageQuery selects one page of journal entries, newest first.
type JournalPageQuery struct {
	Before   uint64    // only entries with a lower sequence number; 0: from the newest
	After    uint64    // only entries with a higher sequence number (a live tail)
	Kind     string    // exactly this kind; "" any
	Terminal string    // this device id or client address; "" any
	Since    time.Time // at or after; zero: no bound
	Until    time.Time // before; zero: no bound
	Text     string    // case-insensitive substring of any field or body; "" any
	// NoPolls leaves out the daemon's own calls that read the upstream
	// (hello, lists, bills): what remains is the registers' exchanges, the
	// receipts pushed and the upstream's changes of state.
	NoPolls bool
	Limit   int // rows wanted; 0: 50
	Budget  int // entries to look at at most; 0: JournalScanBudget
	// BudgetBytes bounds the block bytes read (the first block is always
	// read whole); 0: JournalScanBytes.
	BudgetBytes int
}

// JournalPage is one page of journal entries.
type JournalPage struct {
	Entries []shopbridge.JournalEntry // newest first; ReqBody filled from stored receipts
	// Next is the cursor for the following page (pass it as Before), or 0
	// when nothing older matches. A page with fewer entries than asked and a
	// Next ran out of budget, not of entries.
	Next    uint64
	Scanned int    // entries looked at
	Done    bool   // every entry the query could match was looked at
	Total   int    // entries in the journal
	Newest  uint64 // the newest entry's sequence number: a live tail goes on after it
}

// journalFilter is a JournalPageQuery prepared for matching raw entries.
type journalFilter struct {
	kind, terminal []byte
	since, until   int64 // unix ns; 0: no bound
	text           textMatcher
	noPolls        bool
	// bodyMatch caches the text match of each body of the block being
	// read: bodies repeat across a block's entries (registers poll the
	// same list), so each is searched once.
	bodyMatch []int8 // 0 unknown, 1 match, -1 no match
}

var (
	upstreamClient = []byte("upstream")
	methodGET      = []byte("GET")
)

func (f *journalFilter) timeOK(t int64) bool {
	return (f.since == 0 || t >= f.since) && (f.until == 0 || t < f.until)
}

// newBlock forgets the body matches of the previous block.
func (f *journalFilter) newBlock(b *rawBlock) {
	f.bodyMatch = append(f.bodyMatch[:0], make([]int8, len(b.bodies))...)
}

func (f *journalFilter) bodyMatches(b *rawBlock, ref uint64) bool {
	if ref == 0 || ref > uint64(len(b.bodies)) {
		return false
	}
	switch f.bodyMatch[ref-1] {
	case 1:
		return true
	case -1:
		return false
	}
	ok := f.text.match(b.bodies[ref-1])
	f.bodyMatch[ref-1] = -1
	if ok {
		f.bodyMatch[ref-1] = 1
	}
	return ok
}

func (f *journalFilter) match(tx *bolt.Tx, b *rawBlock, e *rawEntry) bool {
	if !f.timeOK(e.time) {
		return false
	}
	if f.kind != nil && !bytes.Equal(e.fields[fKind], f.kind) {
		return false
	}
	if f.noPolls && bytes.Equal(e.fields[fClient], upstreamClient) && bytes.Equal(e.fields[fMethod], methodGET) {
		return false
	}
	if f.terminal != nil && !bytes.Equal(e.fields[fDevice], f.terminal) && !bytes.Equal(e.fields[fClient], f.terminal) {
		return false
	}
	if f.text.empty() {
		return true
	}
	for _, v := range e.fields {
		if f.text.match(v) {
			return true
		}
	}
	if f.bodyMatches(b, e.reqRef) || f.bodyMatches(b, e.respRef) {
		return true
	}
	if id := e.fields[fReceipt]; len(id) > 0 && e.reqRef == 0 {
		return f.text.match(receiptRawBody(tx, id))
	}
	return false
}

// JournalPage returns one page of the journal, newest first. It looks at
// no more than q.Budget entries: a filter that matches little answers with
// what it found and a Next cursor, so paging costs the same at the newest
// entry and at the millionth.
func (s *Store) JournalPage(q JournalPageQuery) (JournalPage, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Budget <= 0 {
		q.Budget = JournalScanBudget
	}
	if q.BudgetBytes <= 0 {
		q.BudgetBytes = JournalScanBytes
	}
	f := journalFilter{text: newTextMatcher(q.Text), noPolls: q.NoPolls}
	if q.Kind != "" {
		f.kind = []byte(q.Kind)
	}
	if q.Terminal != "" {
		f.terminal = []byte(q.Terminal)
	}
	if !q.Since.IsZero() {
		f.since = q.Since.UnixNano()
	}
	if !q.Until.IsZero() {
		f.until = q.Until.UnixNano()
	}
	var page JournalPage
	err := s.view(func(tx *bolt.Tx) error {
		page.Total = int(getInt(tx.Bucket(bucketMeta), keyJournalEntries))
		c := tx.Bucket(bucketJournal).Cursor()
		if k, v := c.Last(); k != nil {
			if n := maxBlockEntries(v); n > 0 {
				page.Newest = binary.BigEndian.Uint64(k) + uint64(n) - 1
			}
		}
		before := q.Before
		if before == 0 && !q.Until.IsZero() {
			before = untilSeq(c, q.Until)
		}
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			k, v = seekBlock(c, before-1)
		}
		var b rawBlock
		read := 0 // block bytes
		// Blocks are given back to the kernel once this request is done
		// with them (the entries it returns are copies).
		pages := newPageDropper(s.db, tx)
		var done [][]byte
		defer func() {
			for _, v := range done {
				pages.drop(v)
			}
		}()
		for ; k != nil; k, v = c.Prev() {
			first := binary.BigEndian.Uint64(k)
			n := uint64(maxBlockEntries(v))
			if n > 0 && first+n-1 <= q.After {
				break // this block's entries and older ones are all at or below After
			}
			if read > 0 && read+len(v) > q.BudgetBytes {
				page.Next = first + n // none of this block is looked at yet
				if before != 0 && page.Next > before {
					page.Next = before
				}
				return nil
			}
			read += len(v)
			done = append(done, v)
			if newest, err := blockNewest(v); err == nil && f.since != 0 && newest.UnixNano() < f.since {
				break
			}
			if err := b.read(first, v); err != nil {
				s.logger.Warn("skipping unreadable journal block", "key", first, "err", err)
				continue
			}
			f.newBlock(&b)
			for i := len(b.entries) - 1; i >= 0; i-- {
				e := &b.entries[i]
				if before != 0 && e.seq >= before {
					continue
				}
				if e.seq <= q.After {
					page.Done = true
					return nil
				}
				if page.Scanned >= q.Budget {
					page.Next = e.seq + 1 // this one is not looked at yet
					return nil
				}
				page.Scanned++
				if f.since != 0 && e.time < f.since {
					page.Done = true
					return nil
				}
				if !f.match(tx, &b, e) {
					continue
				}
				page.Entries = append(page.Entries, b.entry(tx, e))
				if len(page.Entries) == q.Limit {
					if e.seq > 1 && e.seq-1 > q.After {
						page.Next = e.seq
					} else {
						page.Done = true
					}
					return nil
				}
			}
		}
		page.Done = true
		return nil
	})
	if page.Next != 0 {
		page.Done = false
	}
	return page, err
}

// seekBlock positions c at the block holding seq (the last block whose
// first sequence number is at most seq).
func seekBlock(c *bolt.Cursor, seq uint64) (k, v []byte) {
	k, v = c.Seek(seqKey(seq))
	if k == nil {
		return c.Last()
	}
	if binary.BigEndian.Uint64(k) > seq {
		return c.Prev()
	}
	return k, v
}

// untilSeq finds, by bisecting on sequence numbers, the first sequence
// number of the oldest block whose newest entry is at or after until: the
// scan for entries before until starts at the end of that block. Entries
// are written in time order, give or take the moments requests overlap.
func untilSeq(c *bolt.Cursor, until time.Time) uint64 {
	fk, _ := c.First()
	lk, lv := c.Last()
	if fk == nil {
		return 0
	}
	if newest, err := blockNewest(lv); err != nil || newest.Before(until) {
		return 0 // everything is older: start at the newest
	}
	lo, hi := binary.BigEndian.Uint64(fk), binary.BigEndian.Uint64(lk)
	for lo < hi {
		mid := lo + (hi-lo)/2
		k, v := seekBlock(c, mid)
		newest, err := blockNewest(v)
		if k == nil || err != nil {
			break
		}
		first := binary.BigEndian.Uint64(k)
		if newest.Before(until) {
			lo = first + uint64(maxBlockEntries(v))
			if lo <= mid {
				lo = mid + 1
			}
		} else {
			hi = first
		}
	}
	k, v := seekBlock(c, lo)
	if k == nil {
		return 0
	}
	return binary.BigEndian.Uint64(k) + uint64(maxBlockEntries(v))
}

// JournalEntry returns the entry with sequence number seq, its request body
// filled from the stored receipt when the journal names one.
func (s *Store) JournalEntry(seq uint64) (shopbridge.JournalEntry, error) {
	var out shopbridge.JournalEntry
	found := false
	err := s.view(func(tx *bolt.Tx) error {
		k, v := seekBlock(tx.Bucket(bucketJournal).Cursor(), seq)
		if k == nil {
			return nil
		}
		var b rawBlock
		first := binary.BigEndian.Uint64(k)
		if err := b.read(first, v); err != nil {
			return err
		}
		if seq < first || seq-first >= uint64(len(b.entries)) {
			return nil
		}
		out, found = b.entry(tx, &b.entries[seq-first]), true
		return nil
	})
	if err == nil && !found {
		err = shopbridge.Errorf(shopbridge.ENOTFOUND, "seq", "no journal entry %d (pruned, or not written yet)", seq)
	}
	return out, err
}

// textMatcher finds a needle in bytes, ignoring case (Unicode simple
// folding), without allocating: bytes.Index finds each spelling of the
// needle's first letter (fast, vectorised) and the rest is compared rune
// by rune. JSON that escapes non-ASCII letters (\u0418) is matched in that
// form too, with the needle's letters as typed.
type textMatcher struct {
	needles []foldNeedle
}

type foldNeedle struct {
	rest   []rune   // the needle after its first rune, lower case
	firsts [][]byte // the first rune in each case, UTF-8
}

func newFoldNeedle(text string) foldNeedle {
	first, size := utf8.DecodeRuneInString(text)
	n := foldNeedle{rest: []rune(strings.ToLower(text[size:]))}
	r := first
	for {
		n.firsts = append(n.firsts, utf8.AppendRune(nil, r))
		if r = unicode.SimpleFold(r); r == first {
			break
		}
	}
	return n
}

func newTextMatcher(text string) textMatcher {
	if text == "" {
		return textMatcher{}
	}
	m := textMatcher{needles: []foldNeedle{newFoldNeedle(text)}}
	var e []byte
	ascii := true
	for _, r := range text {
		if r < utf8.RuneSelf {
			e = append(e, byte(r))
			continue
		}
		ascii = false
		for _, u := range utf16.Encode([]rune{r}) {
			e = append(e, '\\', 'u', hexDigits[u>>12], hexDigits[u>>8&15], hexDigits[u>>4&15], hexDigits[u&15])
		}
	}
	if !ascii {
		m.needles = append(m.needles, newFoldNeedle(string(e)))
	}
	return m
}

const hexDigits = "0123456789abcdef"

func (m *textMatcher) empty() bool { return len(m.needles) == 0 }

func (m *textMatcher) match(b []byte) bool {
	for i := range m.needles {
		if m.needles[i].in(b) {
			return true
		}
	}
	return false
}

func (n *foldNeedle) in(b []byte) bool {
	for _, f := range n.firsts {
		for off := 0; off < len(b); {
			i := bytes.Index(b[off:], f)
			if i < 0 {
				break
			}
			off += i + len(f)
			if n.restAt(b[off:]) {
				return true
			}
		}
	}
	return false
}

// restAt reports whether b starts with the needle's rest, ignoring case.
func (n *foldNeedle) restAt(b []byte) bool {
	for _, want := range n.rest {
		if len(b) == 0 {
			return false
		}
		r, size := rune(b[0]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(b)
		}
		if r != want && unicode.ToLower(r) != want {
			return false
		}
		b = b[size:]
	}
	return true
}
