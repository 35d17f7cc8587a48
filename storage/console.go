package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// Queries for the operator console. Each one reads a bounded amount of the
// store however large it grows: journal pages seek by sequence number and
// stop after a scan budget, bill lists walk one day's index, a bill's
// receipts come from their own index.

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
	Limit    int       // rows wanted; 0: 50
	Budget   int       // entries to look at at most; 0: JournalScanBudget
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
}

func (f *journalFilter) timeOK(t int64) bool {
	return (f.since == 0 || t >= f.since) && (f.until == 0 || t < f.until)
}

// rawEntry is an entry read in place from a block: its slices point into
// the block and are valid only inside the transaction.
type rawEntry struct {
	time            int64
	status          int
	duration        int64
	reqRef, respRef uint64
	fields          [9][]byte // client, device, kind, method, path, query, source, note, receipt
	seq             uint64
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

// rawBlock is a block's bodies and entries read in place (no copies).
type rawBlock struct {
	bodies  [][]byte
	entries []rawEntry
	// bodyMatch caches the text match of each body: bodies repeat across a
	// block's entries (registers poll the same list), so each is searched
	// once.
	bodyMatch []int8 // 0 unknown, 1 match, -1 no match
}

// read fills b from block v whose first entry has sequence number first,
// reusing b's slices.
func (b *rawBlock) read(first uint64, v []byte) error {
	if _, err := blockNewest(v); err != nil {
		return err
	}
	r := &blockReader{v: v[9:]}
	n := r.uvarint()
	nb := r.uvarint()
	if r.err != nil || n > uint64(len(v)) || nb > uint64(len(v)) {
		return errBadBlock
	}
	b.bodies = b.bodies[:0]
	for i := uint64(0); i < nb; i++ {
		b.bodies = append(b.bodies, r.bytes())
	}
	b.bodyMatch = append(b.bodyMatch[:0], make([]int8, nb)...)
	b.entries = b.entries[:0]
	var t int64
	for i := uint64(0); i < n; i++ {
		var e rawEntry
		t += r.varint()
		e.seq, e.time = first+i, t
		e.status = int(r.uvarint())
		e.duration = r.varint()
		e.reqRef, e.respRef = r.uvarint(), r.uvarint()
		for k := range e.fields {
			e.fields[k] = r.bytes()
		}
		b.entries = append(b.entries, e)
	}
	return r.err
}

func (b *rawBlock) body(ref uint64) []byte {
	if ref == 0 || ref > uint64(len(b.bodies)) {
		return nil
	}
	return b.bodies[ref-1]
}

func (b *rawBlock) bodyMatches(ref uint64, m *textMatcher) bool {
	if ref == 0 || ref > uint64(len(b.bodies)) {
		return false
	}
	switch b.bodyMatch[ref-1] {
	case 1:
		return true
	case -1:
		return false
	}
	ok := m.match(b.bodies[ref-1])
	b.bodyMatch[ref-1] = -1
	if ok {
		b.bodyMatch[ref-1] = 1
	}
	return ok
}

// entry copies a raw entry out of the transaction.
func (b *rawBlock) entry(tx *bolt.Tx, e *rawEntry) shopbridge.JournalEntry {
	s := func(i int) string { return string(e.fields[i]) }
	out := shopbridge.JournalEntry{Seq: e.seq, Time: time.Unix(0, e.time), Client: s(fClient), Device: s(fDevice),
		Kind: s(fKind), Method: s(fMethod), Path: s(fPath), Query: s(fQuery), Source: s(fSource), Note: s(fNote),
		ReqReceipt: s(fReceipt), Status: e.status, Duration: time.Duration(e.duration),
		ReqBody: bytes.Clone(b.body(e.reqRef)), RespBody: bytes.Clone(b.body(e.respRef))}
	if out.ReqReceipt != "" && out.ReqBody == nil {
		out.ReqBody = bytes.Clone(receiptBody(tx, out.ReqReceipt))
	}
	return out
}

func (f *journalFilter) match(tx *bolt.Tx, b *rawBlock, e *rawEntry) bool {
	if !f.timeOK(e.time) {
		return false
	}
	if f.kind != nil && !bytes.Equal(e.fields[fKind], f.kind) {
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
	if b.bodyMatches(e.reqRef, &f.text) || b.bodyMatches(e.respRef, &f.text) {
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
	f := journalFilter{text: newTextMatcher(q.Text)}
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

// maxBlockEntries reads a block's entry count (0 when unreadable: the block
// is then read and skipped with a warning).
func maxBlockEntries(v []byte) int {
	if len(v) < 10 {
		return 0
	}
	n, k := binary.Uvarint(v[9:])
	if k <= 0 {
		return 0
	}
	return int(n)
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

// receiptRawBody is a stored receipt's body read in place, for matching.
func receiptRawBody(tx *bolt.Tx, eventID []byte) []byte {
	v := tx.Bucket(bucketReceipts).Get(eventID)
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return nil
	}
	return v[k+int(n):]
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

// Bill states as the console shows them.
const (
	BillOpen      = "open"
	BillSettled   = "settled"
	BillPaidTwice = "paid_twice"
)

// BillState is a stored bill's state for the operator.
func BillState(b *shopbridge.Bill) string {
	switch {
	case b.PaidTwice:
		return BillPaidTwice
	case b.Settled:
		return BillSettled
	}
	return BillOpen
}

func flagsState(flags byte) string {
	switch {
	case flags&flagPaidTwice != 0:
		return BillPaidTwice
	case flags&flagSettled != 0:
		return BillSettled
	}
	return BillOpen
}

// DayBillsQuery selects one page of one day's bills, newest first.
type DayBillsQuery struct {
	Date   string // YYYY-MM-DD
	State  string // BillOpen, BillSettled, BillPaidTwice; "" all
	After  string // cursor from the previous page; "" from the newest
	Limit  int    // 0: 100
	Counts bool   // count the day's bills by state (walks the whole day)
}

// DayBills is one page of a day's bills.
type DayBills struct {
	Bills  []*shopbridge.Bill
	Next   string         // cursor for the next page; "" at the end
	Counts map[string]int // by state, and "all"; nil unless asked
}

// DayBills returns one page of the bills dated q.Date, newest first, with
// the day's counts by state when asked.
func (s *Store) DayBills(q DayBillsQuery) (DayBills, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var out DayBills
	if q.Counts {
		out.Counts = map[string]int{"all": 0, BillOpen: 0, BillSettled: 0, BillPaidTwice: 0}
	}
	var after []byte
	if q.After != "" {
		var err error
		if after, err = base64.RawURLEncoding.DecodeString(q.After); err != nil || !bytes.HasPrefix(after, []byte(q.Date+" ")) {
			return out, shopbridge.Errorf(shopbridge.EVALUE, "after", "after is not a cursor of the bills of %s", q.Date)
		}
	}
	err := s.view(func(tx *bolt.Tx) error {
		bills := tx.Bucket(bucketBills)
		prefix := []byte(q.Date + " ")
		c := tx.Bucket(bucketByDate).Cursor()
		var id []byte
		k, _ := c.Seek([]byte(q.Date + "!")) // just past the day: walk it backwards
		if k == nil {
			k, id = c.Last()
		} else {
			k, id = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, id = c.Prev() {
			v := bills.Get(id)
			if len(v) < 2 {
				continue
			}
			// The flags byte is enough for the counts: no decoding.
			state := flagsState(v[1])
			if out.Counts != nil {
				out.Counts["all"]++
				out.Counts[state]++
			}
			if after != nil && bytes.Compare(k, after) >= 0 {
				continue
			}
			if q.State != "" && state != q.State {
				continue
			}
			if len(out.Bills) == q.Limit {
				if out.Next == "" {
					out.Next = base64.RawURLEncoding.EncodeToString(dateKey(out.Bills[len(out.Bills)-1].Summary.Date, out.Bills[len(out.Bills)-1].Summary.ID))
				}
				if out.Counts == nil {
					return nil
				}
				continue
			}
			r, err := decodeBill(v)
			if err != nil {
				return err
			}
			out.Bills = append(out.Bills, r.bill())
		}
		return nil
	})
	return out, err
}

// FindBills returns bills whose id is text or whose number starts with
// text, at most limit, newest first.
func (s *Store) FindBills(text string, limit int) ([]*shopbridge.Bill, error) {
	if limit <= 0 {
		limit = 50
	}
	var out []*shopbridge.Bill
	err := s.view(func(tx *bolt.Tx) error {
		seen := map[string]bool{}
		if ValidID(text) {
			if r, err := getBill(tx, text); err != nil {
				return err
			} else if r != nil {
				out = append(out, r.bill())
				seen[text] = true
			}
		}
		c := tx.Bucket(bucketByNumber).Cursor()
		p := []byte(text)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p) && len(out) < limit; k, _ = c.Next() {
			i := bytes.LastIndexByte(k, 0)
			if i < 0 || seen[string(k[i+1:])] {
				continue
			}
			r, err := getBill(tx, string(k[i+1:]))
			if err != nil {
				return err
			}
			if r != nil {
				seen[r.sum.ID] = true
				out = append(out, r.bill())
			}
		}
		return nil
	})
	// Sort the bills as their summaries sort: newest first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && newer(out[j].Summary, out[j-1].Summary); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, err
}

// BillRecord returns the bill with the given id as stored, also one known
// only from a list (Body nil), or an ENOTFOUND error.
func (s *Store) BillRecord(id string) (*shopbridge.Bill, error) {
	var b *shopbridge.Bill
	err := s.view(func(tx *bolt.Tx) error {
		r, err := getBill(tx, id)
		if r != nil {
			b = r.bill()
		}
		return err
	})
	if err == nil && b == nil {
		err = shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %s", id)
	}
	return b, err
}

// PaidTwiceBills returns up to limit bills two settling receipts paid.
func (s *Store) PaidTwiceBills(limit int) ([]*shopbridge.Bill, error) {
	var out []*shopbridge.Bill
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPaidTwice).Cursor()
		for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
			r, err := getBill(tx, string(k))
			if err != nil {
				return err
			}
			if r != nil {
				out = append(out, r.bill())
			}
		}
		return nil
	})
	return out, err
}

// PaidTwiceCount is the number of bills paid twice.
func (s *Store) PaidTwiceCount() (n int) {
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Bucket(bucketPaidTwice).Stats().KeyN; return nil })
	return n
}

// ParkedFirst returns up to limit parked receipts, oldest first.
func (s *Store) ParkedFirst(limit int) ([]*shopbridge.Receipt, error) {
	return s.queue(bucketParked, 0, limit)
}

func billReceiptKey(billID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(billID+"\x00"), seq)
}

// BillReceipts returns the receipts naming bill id in data.extras.billId,
// in the order they were accepted.
func (s *Store) BillReceipts(billID string) ([]*shopbridge.Receipt, error) {
	var out []*shopbridge.Receipt
	err := s.view(func(tx *bolt.Tx) error {
		receipts := tx.Bucket(bucketReceipts)
		prefix := []byte(billID + "\x00")
		c := tx.Bucket(bucketReceiptsByBill).Cursor()
		for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
			v := receipts.Get(id)
			if v == nil {
				continue
			}
			r, err := decodeReceipt(string(id), v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
