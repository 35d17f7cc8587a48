package storage

import (
	"bytes"
	"encoding/base64"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// Bill queries for the operator console. Each one reads a bounded amount
// of the store however large it grows: a day's bills walk that day's index,
// the open ones the no-parameter list's, a search the number index.

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
			flags, ok := billFlags(v)
			if !ok {
				continue
			}
			state := flagsState(flags)
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
		if shopbridge.ValidID(text) {
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

// OpenBills returns one page of the bills a register's no-parameter list
// answers now (the open ones), newest first, and a cursor for the next
// page ("" at the end). after is the previous page's cursor.
func (s *Store) OpenBills(after string, limit int) (bills []*shopbridge.Bill, next string, err error) {
	if limit <= 0 {
		limit = 100
	}
	var cur []byte
	if after != "" {
		if cur, err = base64.RawURLEncoding.DecodeString(after); err != nil || len(cur) == 0 {
			return nil, "", shopbridge.Errorf(shopbridge.EVALUE, "after", "after is not a cursor of the open bills")
		}
	}
	err = s.view(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketBills)
		c := tx.Bucket(bucketOpen).Cursor()
		k, id := c.Last()
		if cur != nil {
			if k, _ = c.Seek(cur); k == nil {
				k, id = c.Last()
			} else {
				k, id = c.Prev() // the cursor is the last key shown: go on below it
			}
		}
		for ; k != nil; k, id = c.Prev() {
			if cur != nil && bytes.Compare(k, cur) >= 0 {
				continue
			}
			if len(bills) == limit {
				next = base64.RawURLEncoding.EncodeToString(dateKey(bills[len(bills)-1].Summary.Date, bills[len(bills)-1].Summary.ID))
				return nil
			}
			v := all.Get(id)
			if v == nil {
				continue
			}
			r, err := decodeBill(v)
			if err != nil {
				return err
			}
			bills = append(bills, r.bill())
		}
		return nil
	})
	return bills, next, err
}
