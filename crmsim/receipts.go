package crmsim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Receipt is one POST /api/v2/receipts as it arrived. Every arrival is
// recorded, duplicates and faulted or unauthorized ones included. In the
// control API's JSON, Body is base64 (encoding/json's form of []byte), so any
// bytes survive exactly.
type Receipt struct {
	Seq           int               `json:"seq"`           // arrival order, from 1 (restarts after ResetReceipts)
	Time          time.Time         `json:"time"`          // when the body had been read
	EventID       string            `json:"event_id"`      // the body's top-level "id" string, "" if none
	Body          []byte            `json:"body"`          // exact bytes received
	Headers       map[string]string `json:"headers"`       // request headers starting X-Evotor- (canonical names, first value)
	Authorization bool              `json:"authorization"` // an Authorization header was present
	Status        int               `json:"status"`        // status answered; 0 while hanging or when the connection was reset
	Fault         string            `json:"fault,omitempty"`
	Delivered     bool              `json:"delivered"` // a complete, well-formed 200 answer was sent
	// Answered is when the simulator settled the answer, just before
	// writing it; zero while the call is being served. [Time, Answered]
	// of two receipts overlapping means they were served at once.
	Answered time.Time `json:"answered,omitzero"`
}

// record appends an arrival and returns it for finish.
func (s *Server) record(r *http.Request, body []byte) *Receipt {
	rec := &Receipt{
		Time:          time.Now(),
		Body:          body,
		Headers:       map[string]string{},
		Authorization: r.Header.Get("Authorization") != "",
	}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-evotor-") && len(v) > 0 {
			rec.Headers[http.CanonicalHeaderKey(k)] = v[0]
		}
	}
	var ev struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(body, &ev) == nil {
		if id, ok := ev.ID.(string); ok {
			rec.EventID = id
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Seq = len(s.receipts) + 1
	s.receipts = append(s.receipts, rec)
	s.notify()
	return rec
}

// finish sets how an arrival was answered. rec may be nil (not a receipt).
func (s *Server) finish(rec *Receipt, status int, fault string, delivered bool) {
	if rec == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Status, rec.Fault, rec.Delivered, rec.Answered = status, fault, delivered, time.Now()
	s.notify()
}

// notify wakes WaitReceipts. s.mu is held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Receipts returns a copy of every recorded arrival, oldest first.
func (s *Server) Receipts() []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Receipt, len(s.receipts))
	for i, r := range s.receipts {
		out[i] = *r
		out[i].Headers = make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			out[i].Headers[k] = v
		}
	}
	return out
}

// ResetReceipts forgets every recorded arrival.
func (s *Server) ResetReceipts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.receipts = nil
	s.notify()
}

// WaitReceipts waits until at least n receipts were delivered (answered with
// a complete 200) and returns all recorded arrivals, or ctx's error.
func (s *Server) WaitReceipts(ctx context.Context, n int) ([]Receipt, error) {
	for {
		s.mu.Lock()
		delivered := 0
		for _, r := range s.receipts {
			if r.Delivered {
				delivered++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if delivered >= n {
			return s.Receipts(), nil
		}
		select {
		case <-ctx.Done():
			return s.Receipts(), ctx.Err()
		case <-ch:
		}
	}
}
