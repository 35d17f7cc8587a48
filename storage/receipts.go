package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// receiptMeta is a receipt record without its body; the body follows it
// as raw bytes so that it is kept exactly as received.
type receiptMeta struct {
	Seq              uint64            `json:"seq"`
	Headers          map[string]string `json:"headers,omitempty"`
	ReceivedAt       time.Time         `json:"received_at"`
	Type             string            `json:"type,omitempty"`
	BillID           string            `json:"bill_id,omitempty"`
	SettlementMethod string            `json:"settlement_method,omitempty"`
	DeviceID         string            `json:"device_id,omitempty"`
	State            string            `json:"state"`
	Attempts         int               `json:"attempts,omitempty"`
	LastError        string            `json:"last_error,omitempty"`
	DeliveredAt      time.Time         `json:"delivered_at,omitzero"`
}

func encodeReceipt(r *shopbridge.Receipt) []byte {
	m, _ := json.Marshal(receiptMeta{Seq: r.Seq, Headers: r.Headers, ReceivedAt: r.ReceivedAt, Type: r.Type,
		BillID: r.BillID, SettlementMethod: r.SettlementMethod, DeviceID: r.DeviceID, State: r.State,
		Attempts: r.Attempts, LastError: r.LastError, DeliveredAt: r.DeliveredAt})
	b := make([]byte, 0, binary.MaxVarintLen64+len(m)+len(r.Body))
	b = binary.AppendUvarint(b, uint64(len(m)))
	b = append(b, m...)
	return append(b, r.Body...)
}

// splitReceipt splits a receipt record in place into its meta (JSON) and
// its body: the one reader of the record layout.
func splitReceipt(v []byte) (meta, body []byte, ok bool) {
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return nil, nil, false
	}
	return v[k : k+int(n)], v[k+int(n):], true
}

func decodeReceipt(id string, v []byte) (*shopbridge.Receipt, error) {
	meta, body, ok := splitReceipt(v)
	if !ok {
		return nil, fmt.Errorf("receipt %s: bad record", id)
	}
	var m receiptMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("receipt %s: %w", id, err)
	}
	return &shopbridge.Receipt{Seq: m.Seq, EventID: id, Body: append([]byte(nil), body...),
		Headers: m.Headers, ReceivedAt: m.ReceivedAt, Type: m.Type, BillID: m.BillID,
		SettlementMethod: m.SettlementMethod, DeviceID: m.DeviceID, State: m.State, Attempts: m.Attempts,
		LastError: m.LastError, DeliveredAt: m.DeliveredAt}, nil
}

// receiptRawBody is a stored receipt's body read in place (valid only
// inside the transaction); nil when there is no such receipt.
func receiptRawBody(tx *bolt.Tx, eventID []byte) []byte {
	_, body, _ := splitReceipt(tx.Bucket(bucketReceipts).Get(eventID))
	return body
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// settles reports whether a receipt settles its bill.
func settles(r *shopbridge.Receipt) bool {
	return r.Type == "SELL" && (r.SettlementMethod == "" || r.SettlementMethod == "FullSettlement")
}

// AcceptReceipt makes a receipt durable (fsynced, possibly in a commit shared
// with concurrent receipts) and queues it for the upstream. The same event id
// with the same bytes is a duplicate: nothing is written and dup is true.
// The same id with other bytes is an ECONFLICT error.
func (s *Store) AcceptReceipt(r *shopbridge.Receipt) (dup bool, err error) {
	// A register retrying a receipt already stored needs no write, nor a
	// place in a commit, once the commit that stored it has synced; before
	// that it takes a place in the next commit, which starts only when that
	// one has ended. Nor while degraded: what a read shows after a failed
	// commit may not be on disk, and a commit makes it so (fault.go).
	if old, onDisk, err := s.receipt(r.EventID); err == nil && !s.degraded.Load() {
		if !bytes.Equal(old.Body, r.Body) {
			return false, conflictError(r.EventID)
		}
		if onDisk {
			return true, nil
		}
	}
	var conflict bool
	err = s.batch(func(tx *bolt.Tx) error {
		dup, conflict = false, false
		receipts := tx.Bucket(bucketReceipts)
		if v := receipts.Get([]byte(r.EventID)); v != nil {
			old, err := decodeReceipt(r.EventID, v)
			if err != nil {
				return err
			}
			if bytes.Equal(old.Body, r.Body) {
				dup = true
			} else {
				conflict = true
			}
			return nil
		}
		seq, err := receipts.NextSequence()
		if err != nil {
			return err
		}
		rec := *r
		rec.Seq, rec.State = seq, shopbridge.ReceiptQueued
		if err := receipts.Put([]byte(r.EventID), encodeReceipt(&rec)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutbox).Put(seqKey(seq), []byte(r.EventID)); err != nil {
			return err
		}
		if r.BillID != "" {
			if err := tx.Bucket(bucketReceiptsByBill).Put(billReceiptKey(r.BillID, seq), []byte(r.EventID)); err != nil {
				return err
			}
		}
		if err := addCount(tx, keyReceipts, 1); err != nil {
			return err
		}
		if err := addCount(tx, keyOutbox, 1); err != nil {
			return err
		}
		return applyToBill(tx, &rec)
	})
	if err != nil {
		return false, fmt.Errorf("accept receipt %s: %w", r.EventID, err)
	}
	if conflict {
		return false, conflictError(r.EventID)
	}
	if !dup {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
	return dup, nil
}

func conflictError(eventID string) error {
	return shopbridge.Errorf(shopbridge.ECONFLICT, "id",
		"event %s was already accepted with different content; nothing was overwritten", eventID)
}

// applyToBill settles or reopens the bill a receipt names.
func applyToBill(tx *bolt.Tx, r *shopbridge.Receipt) error {
	if r.BillID == "" {
		return nil
	}
	old, err := getBill(tx, r.BillID)
	if err != nil || old == nil {
		return err
	}
	b := *old
	switch {
	case settles(r):
		if b.has(flagSettled) {
			b.set(flagPaidTwice, true)
		}
		b.set(flagSettled, true)
	case r.Type == "PAYBACK":
		b.set(flagSettled, false)
	default:
		return nil
	}
	return putBill(tx, old, &b)
}

// leaveQueue counts a receipt out of the queue its state says it is in.
func leaveQueue(tx *bolt.Tx, state string) error {
	switch state {
	case shopbridge.ReceiptQueued:
		return addCount(tx, keyOutbox, -1)
	case shopbridge.ReceiptParked:
		return addCount(tx, keyParked, -1)
	}
	return nil
}

// Notify signals (coalesced) whenever a receipt enters the outbox.
func (s *Store) Notify() <-chan struct{} { return s.notify }

// Receipt returns the receipt with the given event id.
func (s *Store) Receipt(eventID string) (*shopbridge.Receipt, error) {
	r, _, err := s.receipt(eventID)
	return r, err
}

// receipt is Receipt, and whether the receipt is durable (see onDisk).
func (s *Store) receipt(eventID string) (r *shopbridge.Receipt, onDisk bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		onDisk = s.onDisk(tx)
		v := tx.Bucket(bucketReceipts).Get([]byte(eventID))
		if v == nil {
			return shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no receipt with event id %s", eventID)
		}
		var err error
		r, err = decodeReceipt(eventID, v)
		return err
	})
	return r, onDisk, err
}

// Outbox returns up to limit queued receipts with a sequence above after,
// oldest first.
func (s *Store) Outbox(after uint64, limit int) ([]*shopbridge.Receipt, error) {
	return s.queue(bucketOutbox, after, limit)
}

// Parked returns receipts the upstream refused, oldest first.
func (s *Store) Parked() ([]*shopbridge.Receipt, error) { return s.queue(bucketParked, 0, 0) }

// ParkedAfter returns up to limit parked receipts with a sequence above
// after, oldest first: a page of them for the operator.
func (s *Store) ParkedAfter(after uint64, limit int) ([]*shopbridge.Receipt, error) {
	return s.queue(bucketParked, after, limit)
}

func (s *Store) queue(name []byte, after uint64, limit int) ([]*shopbridge.Receipt, error) {
	var out []*shopbridge.Receipt
	err := s.view(func(tx *bolt.Tx) (err error) {
		out, err = queueTx(tx, name, after, limit)
		return err
	})
	return out, err
}

// queueTx reads up to limit receipts (0: all) of the outbox or the parked
// list with a sequence above after, oldest first.
func queueTx(tx *bolt.Tx, name []byte, after uint64, limit int) ([]*shopbridge.Receipt, error) {
	var out []*shopbridge.Receipt
	receipts := tx.Bucket(bucketReceipts)
	c := tx.Bucket(name).Cursor()
	for k, id := c.Seek(seqKey(after + 1)); k != nil; k, id = c.Next() {
		if limit > 0 && len(out) >= limit {
			break
		}
		v := receipts.Get(id)
		if v == nil {
			return nil, fmt.Errorf("%s entry %x names missing receipt %s", name, k, id)
		}
		r, err := decodeReceipt(string(id), v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Queues is the store's counts with the first receipts of the outbox and of
// the parked list, read in one transaction, so that the counts and the lists
// agree: read apart, a status could count a receipt in the outbox that its
// list no longer showed, pushed in between.
type Queues struct {
	Stats
	OutboxHead []*shopbridge.Receipt // the first limit of the outbox, oldest first
	ParkedHead []*shopbridge.Receipt // the first limit of the parked list, oldest first
}

// Queues reads the counts and the first limit receipts of each queue.
func (s *Store) Queues(limit int) (Queues, error) {
	var q Queues
	err := s.view(func(tx *bolt.Tx) (err error) {
		q.Stats = statsTx(tx)
		if q.OutboxHead, err = queueTx(tx, bucketOutbox, 0, limit); err != nil {
			return err
		}
		q.ParkedHead, err = queueTx(tx, bucketParked, 0, limit)
		return err
	})
	q.Commits = s.Commits()
	return q, err
}

// OldestQueued is the receive time of the oldest receipt in the outbox.
func (s *Store) OldestQueued() (t time.Time) {
	rs, err := s.Outbox(0, 1)
	if err == nil && len(rs) == 1 {
		t = rs[0].ReceivedAt
	}
	return t
}

// modifyReceipt changes one receipt in a shared commit; background: a
// change the sync makes (batchBackground), not an operator's.
func (s *Store) modifyReceipt(eventID string, background bool, fn func(tx *bolt.Tx, r *shopbridge.Receipt) error) error {
	batch := s.batch
	if background {
		batch = s.batchBackground
	}
	return batch(func(tx *bolt.Tx) error {
		receipts := tx.Bucket(bucketReceipts)
		v := receipts.Get([]byte(eventID))
		if v == nil {
			return shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no receipt with event id %s", eventID)
		}
		r, err := decodeReceipt(eventID, v)
		if err != nil {
			return err
		}
		if err := fn(tx, r); err != nil {
			return err
		}
		return receipts.Put([]byte(eventID), encodeReceipt(r))
	})
}

// MarkDelivered takes a receipt out of the outbox: the upstream has it.
func (s *Store) MarkDelivered(eventID string, at time.Time) error {
	return s.modifyReceipt(eventID, true, func(tx *bolt.Tx, r *shopbridge.Receipt) error {
		if err := leaveQueue(tx, r.State); err != nil {
			return err
		}
		r.State, r.DeliveredAt, r.LastError = shopbridge.ReceiptDelivered, at, ""
		r.Attempts++
		if err := tx.Bucket(bucketParked).Delete(seqKey(r.Seq)); err != nil {
			return err
		}
		return tx.Bucket(bucketOutbox).Delete(seqKey(r.Seq))
	})
}

// MarkFailed records a failed attempt that will be retried; the receipt
// keeps its place in the outbox.
func (s *Store) MarkFailed(eventID, reason string) error {
	return s.modifyReceipt(eventID, true, func(tx *bolt.Tx, r *shopbridge.Receipt) error {
		r.Attempts++
		r.LastError = reason
		return nil
	})
}

// Park moves a receipt the upstream refused out of the outbox, with the
// upstream's answer, for the operator to see and retry.
func (s *Store) Park(eventID, answer string) error {
	return s.modifyReceipt(eventID, true, func(tx *bolt.Tx, r *shopbridge.Receipt) error {
		r.Attempts++
		if err := leaveQueue(tx, r.State); err != nil {
			return err
		}
		if err := addCount(tx, keyParked, 1); err != nil {
			return err
		}
		r.State, r.LastError = shopbridge.ReceiptParked, answer
		if err := tx.Bucket(bucketOutbox).Delete(seqKey(r.Seq)); err != nil {
			return err
		}
		return tx.Bucket(bucketParked).Put(seqKey(r.Seq), []byte(eventID))
	})
}

// Retry puts a parked receipt back into the outbox at its old place.
func (s *Store) Retry(eventID string) error {
	err := s.modifyReceipt(eventID, false, func(tx *bolt.Tx, r *shopbridge.Receipt) error {
		if r.State != shopbridge.ReceiptParked {
			return shopbridge.Errorf(shopbridge.ECONFLICT, "id", "receipt %s is %s, not parked", eventID, r.State)
		}
		if err := leaveQueue(tx, r.State); err != nil {
			return err
		}
		if err := addCount(tx, keyOutbox, 1); err != nil {
			return err
		}
		r.State = shopbridge.ReceiptQueued
		if err := tx.Bucket(bucketParked).Delete(seqKey(r.Seq)); err != nil {
			return err
		}
		return tx.Bucket(bucketOutbox).Put(seqKey(r.Seq), []byte(eventID))
	})
	if err == nil {
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
	return err
}

// Receipts returns up to limit receipts, newest accepted first.
func (s *Store) Receipts(limit int) ([]*shopbridge.Receipt, error) {
	var out []*shopbridge.Receipt
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReceipts).ForEach(func(k, v []byte) error {
			r, err := decodeReceipt(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	// Event ids are not ordered; sort by acceptance.
	sort.Slice(out, func(i, j int) bool { return out[i].Seq > out[j].Seq })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
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
