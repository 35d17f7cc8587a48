package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// A bill record: version, flags, updated-at, then length-prefixed fields.
const billRecordV1 = 1

const (
	flagListed = 1 << iota
	flagFresh
	flagSettled
	flagPaidTwice
	flagFromList // the summary came from an upstream list, not derived
)

type billRecord struct {
	flags   byte
	updated time.Time
	sum     shopbridge.BillSummary
	body    []byte
}

func (r *billRecord) has(f byte) bool { return r.flags&f != 0 }
func (r *billRecord) set(f byte, on bool) {
	if on {
		r.flags |= f
	} else {
		r.flags &^= f
	}
}

// open reports whether the bill belongs to the no-parameter list.
func (r *billRecord) open() bool {
	return (r.has(flagListed) || r.has(flagFresh)) && !r.has(flagSettled)
}

func (r *billRecord) encode() []byte {
	fields := [][]byte{[]byte(r.sum.ID), []byte(r.sum.Date), []byte(r.sum.Summ), []byte(r.sum.Number),
		[]byte(r.sum.CustomerName), r.sum.Raw, r.body}
	n := 2 + 8
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, billRecordV1, r.flags)
	b = binary.BigEndian.AppendUint64(b, uint64(r.updated.UnixNano()))
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// rawBill is a bill record read in place: the one decoder of the record
// layout. Its slices point into the record, valid only inside the
// transaction.
type rawBill struct {
	flags   byte
	updated int64     // unix ns
	fields  [7][]byte // id, date, summ, number, customer name, summary bytes, body
}

const (
	billFieldRaw  = 5
	billFieldBody = 6
)

var errBadBill = errors.New("bad bill record")

func (r *rawBill) read(v []byte) error {
	if len(v) < 10 || v[0] != billRecordV1 {
		return errBadBill
	}
	r.flags, r.updated = v[billFlagsAt], int64(binary.BigEndian.Uint64(v[2:10]))
	v = v[10:]
	for i := range r.fields {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return errBadBill
		}
		r.fields[i] = v[k : k+int(n)]
		v = v[k+int(n):]
	}
	return nil
}

// billFlagsAt is where a bill record keeps its flags.
const billFlagsAt = 1

// billFlags is a bill record's flags, read without decoding the rest: the
// counts by state need nothing else.
func billFlags(v []byte) (flags byte, ok bool) {
	if len(v) <= billFlagsAt {
		return 0, false
	}
	return v[billFlagsAt], true
}

// decodeBill copies a bill record out of the transaction.
func decodeBill(v []byte) (*billRecord, error) {
	var raw rawBill
	if err := raw.read(v); err != nil {
		return nil, err
	}
	f := &raw.fields
	r := &billRecord{flags: raw.flags, updated: time.Unix(0, raw.updated),
		sum: shopbridge.BillSummary{ID: string(f[0]), Date: string(f[1]), Summ: string(f[2]), Number: string(f[3]),
			CustomerName: string(f[4]), Raw: bytes.Clone(f[billFieldRaw])}}
	if len(r.sum.Raw) == 0 {
		r.sum.Raw = nil
	}
	if len(f[billFieldBody]) > 0 {
		r.body = bytes.Clone(f[billFieldBody])
	}
	return r, nil
}

func (r *billRecord) bill() *shopbridge.Bill {
	return &shopbridge.Bill{
		Summary: r.sum, Body: r.body,
		Listed: r.has(flagListed), Settled: r.has(flagSettled), PaidTwice: r.has(flagPaidTwice),
		UpdatedAt: r.updated,
	}
}

// padID makes ids sort as numbers inside index keys.
func padID(id string) string {
	const width = 40
	if len(id) >= width {
		return id
	}
	return strings.Repeat("0", width-len(id)) + id
}

func dateKey(date, id string) []byte { return []byte(date + "\x00" + padID(id)) }
func numberKey(number, id string) []byte {
	return []byte(number + "\x00" + id)
}

func getBill(tx *bolt.Tx, id string) (*billRecord, error) {
	v := tx.Bucket(bucketBills).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	r, err := decodeBill(v)
	if err != nil {
		return nil, fmt.Errorf("bill %s: %w", id, err)
	}
	return r, nil
}

// putBill writes r, keeping every index in step with the change from old.
func putBill(tx *bolt.Tx, old, r *billRecord) error {
	id := r.sum.ID
	bills, byNum, byDate := tx.Bucket(bucketBills), tx.Bucket(bucketByNumber), tx.Bucket(bucketByDate)
	open, listed, fresh := tx.Bucket(bucketOpen), tx.Bucket(bucketListed), tx.Bucket(bucketFresh)
	if old != nil {
		if err := byNum.Delete(numberKey(old.sum.Number, id)); err != nil {
			return err
		}
		if err := byDate.Delete(dateKey(old.sum.Date, id)); err != nil {
			return err
		}
		if err := open.Delete(dateKey(old.sum.Date, id)); err != nil {
			return err
		}
	}
	if err := byNum.Put(numberKey(r.sum.Number, id), nil); err != nil {
		return err
	}
	if err := byDate.Put(dateKey(r.sum.Date, id), []byte(id)); err != nil {
		return err
	}
	if r.open() {
		if err := open.Put(dateKey(r.sum.Date, id), []byte(id)); err != nil {
			return err
		}
	}
	if err := setMember(listed, id, r.has(flagListed)); err != nil {
		return err
	}
	if err := setMember(fresh, id, r.has(flagFresh)); err != nil {
		return err
	}
	if err := setMember(tx.Bucket(bucketPaidTwice), id, r.has(flagPaidTwice)); err != nil {
		return err
	}
	if old == nil {
		if err := addCount(tx, keyBills, 1); err != nil {
			return err
		}
	}
	if wasOpen := old != nil && old.open(); wasOpen != r.open() {
		delta := int64(1)
		if wasOpen {
			delta = -1
		}
		if err := addCount(tx, keyOpen, delta); err != nil {
			return err
		}
	}
	return bills.Put([]byte(id), r.encode())
}

func setMember(b *bolt.Bucket, id string, in bool) error {
	if in {
		return b.Put([]byte(id), nil)
	}
	return b.Delete([]byte(id))
}

func sameSummary(a, b shopbridge.BillSummary) bool {
	return a.ID == b.ID && a.Date == b.Date && a.Summ == b.Summ && a.Number == b.Number && a.CustomerName == b.CustomerName
}

// ListKind says which upstream list a pull brought.
type ListKind int

const (
	// ListAll is the upstream's no-parameter list: it replaces the set of
	// listed bills.
	ListAll ListKind = iota
	// ListPartial is any other list (date=today, number=): it adds and
	// updates bills without dropping others.
	ListPartial
)

// ApplyList stores the summaries of an upstream list answer and returns the
// ids whose full bill must be fetched: new ones, changed ones (any summary
// field differs) and ones never fetched. With ListAll, bills missing from the
// list leave the no-parameter list (and lose a local settlement), and at
// becomes the synced-at time.
//
// Each entry's bytes become the bill's summary, served by every list query
// from now on: the latest list that carried a bill decides its summary
// bytes, also when only key order, spacing, escapes or extra fields changed
// (those refresh the bytes without a fetch). A bill that leaves the upstream
// list keeps the last entry it had; PutBill never replaces it (see there).
func (s *Store) ApplyList(summaries []shopbridge.BillSummary, kind ListKind, at time.Time) (fetch []string, err error) {
	inList := make(map[string]bool, len(summaries))
	for _, sum := range summaries {
		inList[sum.ID] = true
	}
	// A chunk of applyChunk written bills a commit: the first list of a
	// big catalogue writes every bill, and in one commit that held the
	// store for 0.4 s on one core, every receipt behind it. Bills the
	// list no longer carries leave with the last chunk; a crash between
	// chunks leaves the next pull to finish.
	pace := newPacer()
	// First, in read transactions of applyRead entries, which entries
	// change the store: a poll of a big list reads every bill and mostly
	// writes none, and read inside the write transaction it held the
	// store for 20-30 ms a pull of 10,000 on one core. An entry that a
	// commit in between makes differ is written by the next pull.
	var todo []shopbridge.BillSummary
	for rest := summaries; len(rest) > 0; {
		err := s.view(func(tx *bolt.Tx) error {
			for n := 0; len(rest) > 0 && n < applyRead; rest, n = rest[1:], n+1 {
				wrote, need, err := applySummary(tx, rest[0], kind, at, false)
				if err != nil {
					return err
				}
				if wrote {
					todo = append(todo, rest[0])
				} else if need {
					fetch = append(fetch, rest[0].ID)
				}
			}
			return nil
		})
		// The bills read are all over the store: give their pages back
		// now, not at the next trim (a list of 10,000 bills maps 40 MiB
		// of them).
		s.trimMapped()
		if err != nil {
			return nil, err
		}
		pace.pause()
	}
	rest := todo
	var drop []string // bills the list no longer carries, found once rest is done
	dropping := false
	for first := true; first || len(rest) > 0 || len(drop) > 0; first = false {
		if !first {
			pace.pause() // the receipts waiting for the store go first
		}
		err = s.update(func(tx *bolt.Tx) error {
			written := 0
			for ; len(rest) > 0 && written < applyChunk; rest = rest[1:] {
				wrote, need, err := applySummary(tx, rest[0], kind, at, true)
				if err != nil {
					return err
				}
				if need {
					fetch = append(fetch, rest[0].ID)
				}
				if wrote {
					written++
				}
			}
			if len(rest) > 0 || kind != ListAll {
				return nil
			}
			if !dropping {
				dropping, drop = true, unlisted(tx, inList)
			}
			for ; len(drop) > 0 && written < applyChunk; drop = drop[1:] {
				if err := dropBill(tx, drop[0]); err != nil {
					return err
				}
				written++
			}
			if len(drop) > 0 {
				return nil
			}
			return putSyncedAt(tx, at)
		})
		s.trimMapped() // as after a read

		if err != nil {
			return nil, err
		}
	}
	if kind == ListAll {
		s.metaMu.Lock()
		s.syncedAt = at
		s.metaMu.Unlock()
	}
	return fetch, nil
}

// applyChunk is how many bills one commit of ApplyList writes at most;
// applyRead how many entries one of its read transactions looks at.
const (
	applyChunk = 256
	applyRead  = 1024
)

// applySummary is ApplyList's work for one entry: wrote says whether the
// bill's record changes (and, with write, was written), fetch whether its
// full bill must be fetched.
func applySummary(tx *bolt.Tx, sum shopbridge.BillSummary, kind ListKind, at time.Time, write bool) (wrote, fetch bool, err error) {
	old, err := getBill(tx, sum.ID)
	if err != nil {
		return false, false, err
	}
	r := &billRecord{sum: sum, updated: at}
	if old != nil {
		*r = *old
		r.sum = sum
		switch {
		case !sameSummary(old.sum, sum):
			fetch = true
			r.updated = at
		case old.body == nil:
			fetch = true
		}
		if !bytes.Equal(old.sum.Raw, sum.Raw) {
			r.updated = at
		}
	} else {
		r.set(flagFresh, kind == ListPartial)
		fetch = true
	}
	r.set(flagFromList, true)
	if kind == ListAll {
		r.set(flagListed, true)
		r.set(flagFresh, false)
	}
	if old != nil && r.flags == old.flags && bytes.Equal(r.sum.Raw, old.sum.Raw) {
		return false, fetch, nil // the usual case of a poll: nothing to write
	}
	if !write {
		return true, fetch, nil
	}
	return true, fetch, putBill(tx, old, r)
}

// unlisted are the bills that leave the no-parameter list at the end of a
// full list: those the upstream no longer lists, and those learned since
// the last full list.
func unlisted(tx *bolt.Tx, inList map[string]bool) (drop []string) {
	for _, name := range [][]byte{bucketListed, bucketFresh} {
		c := tx.Bucket(name).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if !inList[string(k)] {
				drop = append(drop, string(k))
			}
		}
	}
	return drop
}

// dropBill takes bill id out of the no-parameter list.
func dropBill(tx *bolt.Tx, id string) error {
	old, err := getBill(tx, id)
	if err != nil || old == nil {
		return nil
	}
	r := *old
	if r.has(flagListed) {
		r.set(flagSettled, false) // settled here and now gone upstream: done
	}
	r.set(flagListed, false)
	r.set(flagFresh, false)
	return putBill(tx, old, &r)
}

// PutBill stores a bill/byid answer as its exact bytes. A bill the store did
// not know joins the no-parameter list until the next full upstream list.
// changed reports whether the stored bytes changed.
//
// The bill's summary stays the upstream's list entry when a list carried the
// bill, even where the bill disagrees with it (another customer name, a
// field the entry has and the bill lacks): the cloud builds its list on its
// own, and terminals must see what it lists. A changed entry comes with the
// next list (ApplyList). Only a bill no list ever carried (read through by
// id) gets a summary derived from the bill, rebuilt whenever the bill
// changes.
func (s *Store) PutBill(body []byte, at time.Time) (b *shopbridge.Bill, changed bool, err error) {
	sum, err := shopbridge.ParseBill(body)
	if err != nil {
		return nil, false, err
	}
	body = bytes.TrimSpace(body)
	err = s.update(func(tx *bolt.Tx) (err error) {
		b, changed, err = s.putBillTx(tx, sum, body, at)
		return err
	})
	return b, changed, err
}

// PutBills stores many bill/byid answers as PutBill does, in one commit
// (one fsync for all): a big catalogue mirrored on first contact does not
// wait on a disk flush per bill. errs[i] is bodies[i]'s own error (not a
// bill); err, when not nil, is the commit's and no bill of the call is
// stored. stored counts the bills written.
func (s *Store) PutBills(bodies [][]byte, at time.Time) (stored int, errs []error, err error) {
	errs = make([]error, len(bodies))
	sums := make([]shopbridge.BillSummary, len(bodies))
	trimmed := make([][]byte, len(bodies))
	for i, body := range bodies {
		if sums[i], errs[i] = shopbridge.ParseBill(body); errs[i] == nil {
			trimmed[i] = bytes.TrimSpace(body)
			stored++
		}
	}
	if stored == 0 {
		return 0, errs, nil
	}
	err = s.update(func(tx *bolt.Tx) error {
		for i, body := range trimmed {
			if body == nil {
				continue
			}
			if _, _, err := s.putBillTx(tx, sums[i], body, at); err != nil {
				return err
			}
		}
		return nil
	})
	s.trimMapped() // as ApplyList's chunks
	if err != nil {
		return 0, errs, err
	}
	return stored, errs, nil
}

// putBillTx is PutBill's write, in tx.
func (s *Store) putBillTx(tx *bolt.Tx, sum shopbridge.BillSummary, body []byte, at time.Time) (b *shopbridge.Bill, changed bool, err error) {
	old, err := getBill(tx, sum.ID)
	if err != nil {
		return nil, false, err
	}
	r := &billRecord{sum: sum, updated: at, body: body}
	r.set(flagFresh, true)
	if old != nil {
		*r = *old
		r.body = body
		if !r.has(flagFromList) {
			r.sum = sum
		}
		if bytes.Equal(old.body, body) && bytes.Equal(old.sum.Raw, r.sum.Raw) {
			return old.bill(), false, nil
		}
		r.updated = at
	}
	tx.OnCommit(func() { s.bodies.invalidate(sum.ID) })
	return r.bill(), true, putBill(tx, old, r)
}

// Bill returns the bill with the given id, or an ENOTFOUND error. A bill
// known only from a list (not fetched yet) is not found here either.
func (s *Store) Bill(id string) (*shopbridge.Bill, error) {
	var b *shopbridge.Bill
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBills).Get([]byte(id))
		if v == nil {
			return nil
		}
		r, err := decodeBill(v)
		if err != nil {
			return err
		}
		b = r.bill()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b == nil || b.Body == nil {
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %s", id)
	}
	return b, nil
}

// BillBody appends the exact bytes of bill id to dst: the hot path of
// bill/byid, served from memory once read.
func (s *Store) BillBody(dst []byte, id string) ([]byte, error) {
	if b, ok := s.bodies.get(id); ok {
		return append(dst, b...), nil
	}
	b, err := s.readBillBody(id)
	return append(dst, b...), err
}

// SharedBillBody is BillBody without the copy: the bytes may be the
// store's own and must not be modified. They stay valid after the bill
// changes (a change replaces them, it never writes into them), so an
// answer and its journal entry can both hold them.
func (s *Store) SharedBillBody(id string) ([]byte, error) {
	if b, ok := s.bodies.get(id); ok {
		return b, nil
	}
	return s.readBillBody(id)
}

// readBillBody reads bill id's bytes from the file and caches them.
func (s *Store) readBillBody(id string) ([]byte, error) {
	gen := s.bodies.generation()
	var body []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBills).Get([]byte(id))
		if v == nil {
			return nil
		}
		var raw rawBill
		if err := raw.read(v); err != nil {
			return fmt.Errorf("bill %s: %w", id, err)
		}
		if b := raw.fields[billFieldBody]; len(b) > 0 {
			body = bytes.Clone(b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if body == nil {
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %s", id)
	}
	s.bodies.put(id, body, gen)
	return body, nil
}

// ListQuery selects bill summaries. Zero value: the no-parameter list.
type ListQuery struct {
	Date   string // YYYY-MM-DD: bills of that day, not settled here
	Number string // bills with this number, settled or not
}

// List returns the summaries the query selects, newest first.
func (s *Store) List(q ListQuery) ([]shopbridge.BillSummary, error) {
	var out []shopbridge.BillSummary
	err := s.view(func(tx *bolt.Tx) error {
		bills := tx.Bucket(bucketBills)
		add := func(id []byte, wantOpen bool) error {
			v := bills.Get(id)
			if v == nil {
				return nil
			}
			r, err := decodeBill(v)
			if err != nil {
				return err
			}
			if wantOpen && r.has(flagSettled) {
				return nil
			}
			out = append(out, r.sum)
			return nil
		}
		switch {
		case q.Number != "":
			prefix := []byte(q.Number + "\x00")
			c := tx.Bucket(bucketByNumber).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if err := add(k[len(prefix):], false); err != nil {
					return err
				}
			}
			sortNewestFirst(out)
		case q.Date != "":
			prefix := []byte(q.Date + " ")
			c := tx.Bucket(bucketByDate).Cursor()
			// Newest first: walk the day backwards.
			end := []byte(q.Date + "!")
			var k, v []byte
			if k, _ = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
				if err := add(v, true); err != nil {
					return err
				}
			}
		default:
			c := tx.Bucket(bucketOpen).Cursor()
			for k, v := c.Last(); k != nil; k, v = c.Prev() {
				if err := add(v, false); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

func sortNewestFirst(s []shopbridge.BillSummary) {
	// Few bills share a number; insertion sort keeps it simple.
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && newer(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func newer(a, b shopbridge.BillSummary) bool {
	if a.Date != b.Date {
		return a.Date > b.Date
	}
	return padID(a.ID) > padID(b.ID)
}

// PaidTwice returns the ids of bills that two settling receipts paid.
func (s *Store) PaidTwice() ([]string, error) {
	var ids []string
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaidTwice).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	return ids, err
}
