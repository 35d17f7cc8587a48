package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	gosync "sync"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// helloEvery is how often a pull asks hello while the upstream is online.
const helloEvery = 10 * time.Minute

// errNoBill is the upstream's 404 for a bill: an answer, not a failure.
var errNoBill = errors.New("the upstream does not know this bill")

// call sends one request and checks its answer. A 2xx answer that passes
// check is a success; a 404 with notFound set is errNoBill; a 429 or 503 is
// the upstream busy, an answer; anything else (no answer, a cut, a timeout,
// another status, an answer check refuses) is a failure that counts towards
// offline. A call the caller cancelled counts neither way. Every call
// waits for the upstream-wide backoff first (or fails at once when that
// wait outlasts ctx's deadline), reports its answer to it and is
// journaled with its verdict.
func (s *Syncer) call(ctx context.Context, req request, notFound bool, check func(*response) error) (*response, error) {
	sent, err := s.backoff.wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	resp, d, err := s.client.do(ctx, req)
	s.judge(resp, err, sent, req.method+" "+req.path+": "+answerOrError(resp, err))
	if err == nil {
		switch {
		case notFound && resp.status == http.StatusNotFound:
			err = errNoBill
		case resp.status < 200 || resp.status > 299:
			err = fmt.Errorf("%s %s: %s", req.method, req.path, excerpt(resp))
		case check != nil:
			err = check(resp)
		}
	}
	note := ""
	if err != nil {
		note = err.Error()
	}
	s.client.record(req, resp, d, note)
	switch {
	case err == nil || errors.Is(err, errNoBill):
		s.succeeded(sent)
	case resp != nil && busyStatus(resp.status):
		// Busy, not down: the upstream answered. The backoff (and a
		// fetch's window) hold the next calls back.
		s.reachable(sent, err)
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up (shutdown, a terminal hung up): no verdict.
	default:
		if s.failed(err, sent) {
			s.log.Warn("upstream call failed", "kind", req.kind, "path", req.path, "err", err)
		}
	}
	return resp, err
}

// pullLoop pulls on start and every interval while the upstream is online,
// and probes it with hello, backing off, while it is offline.
func (s *Syncer) pullLoop(ctx context.Context) {
	probeMax := min(max(s.cfg.Interval, time.Second), 30*time.Second)
	probes := 0
	for ctx.Err() == nil {
		if !s.Online() {
			if err := s.hello(ctx); err != nil {
				probes++
				wait(ctx, backoff(probes, 100*time.Millisecond, probeMax), s.pullNow)
				continue
			}
			probes = 0
		}
		start := time.Now()
		changed := s.changed()
		next := s.cfg.Interval
		if err := s.pull(ctx); err != nil {
			s.m.pulls.err.Add(1)
			next = min(next, time.Second) // confirm or clear the failure soon
		} else {
			s.m.pulls.ok.Add(1)
		}
		wait(ctx, time.Until(start.Add(next)), s.pullNow, changed)
	}
}

// PullNow asks for a pull (or a probe, while offline) without waiting for
// the interval.
func (s *Syncer) PullNow() {
	select {
	case s.pullNow <- struct{}{}:
	default:
	}
}

// hello asks the upstream's hello and keeps its system string.
func (s *Syncer) hello(ctx context.Context) error {
	var system string
	_, err := s.call(ctx, request{kind: shopbridge.KindUpstreamHello, method: http.MethodGet, path: "/api/v2/hello"}, false,
		func(r *response) (err error) {
			if system, err = parseHello(r.body); err == nil {
				s.mu.Lock()
				s.system = system // before succeeded logs first contact
				s.mu.Unlock()
			}
			return err
		})
	if err != nil {
		return err
	}
	s.setLast(&s.lastHello, time.Now())
	if err := s.st.SetSystem(system); err != nil {
		s.storeFailed("store the upstream's system", err)
	}
	return nil
}

// list asks for one upstream list and returns its usable summaries.
func (s *Syncer) list(ctx context.Context, q url.Values) ([]shopbridge.BillSummary, error) {
	var sums []shopbridge.BillSummary
	_, err := s.call(ctx, request{kind: shopbridge.KindUpstreamList, method: http.MethodGet, path: "/api/v2/list", query: q}, false,
		func(r *response) error {
			var skipped []string
			var err error
			sums, skipped, err = parseList(r.body)
			for _, sk := range skipped {
				s.log.Warn("upstream list entry skipped", "query", q.Encode(), "why", sk)
				s.journalNote(shopbridge.KindUpstreamList, "/api/v2/list", q.Encode(), "skipped "+sk)
			}
			return err
		})
	return sums, err
}

// journalNote records a remark about an exchange already journaled.
func (s *Syncer) journalNote(kind, path, query, note string) {
	if s.cfg.Journal != nil {
		s.cfg.Journal.Record(shopbridge.JournalEntry{Time: time.Now(), Client: "upstream", Kind: kind,
			Path: path, Query: query, Source: "upstream", Note: note})
	}
}

// fetchBill asks bill/byid/id and returns its exact bytes once they are a
// bill with that id.
func (s *Syncer) fetchBill(ctx context.Context, id string) ([]byte, error) {
	if !shopbridge.ValidID(id) {
		return nil, fmt.Errorf("bill id %q is not a whole number", id)
	}
	resp, err := s.call(ctx, request{kind: shopbridge.KindUpstreamBill, method: http.MethodGet, path: "/api/v2/bill/byid/" + id}, true,
		func(r *response) error { return checkBill(id, r.body) })
	if err != nil {
		return nil, err
	}
	return resp.body, nil
}

// pull is one round: hello when due, the full list, today's list, then the
// bills those lists name as new or changed.
func (s *Syncer) pull(ctx context.Context) error {
	s.mu.Lock()
	helloDue := time.Since(s.lastHello) >= helloEvery
	s.mu.Unlock()
	if helloDue {
		if err := s.hello(ctx); err != nil {
			return err
		}
	}
	all, err := s.list(ctx, nil)
	if err != nil {
		return err
	}
	at := time.Now()
	fetch, err := s.st.ApplyList(all, storage.ListAll, at)
	if err != nil {
		s.storeFailed("store the upstream list", err)
		return err
	}
	var errs []error
	today, err := s.list(ctx, url.Values{"date": {"today"}})
	if err != nil {
		errs = append(errs, err)
	} else if more, err := s.st.ApplyList(notIn(today, all), storage.ListPartial, at); err != nil {
		s.storeFailed("store the upstream list of today", err)
		errs = append(errs, err)
	} else {
		fetch = append(fetch, more...)
	}
	s.setLast(&s.lastPull, at)
	if err := s.fetchBills(ctx, dedupe(fetch)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fetchBills fetches and stores bills until done or the upstream goes
// offline. How many fetches are in flight follows the push's adaptive
// window (limit.go) with its own state, capped at FetchWorkers (default
// --push-in-flight): it starts at 8, doubles while the upstream answers
// quickly, and narrows when it refuses (429, 503: the bill goes again,
// after any Retry-After), fails or slows, so an upstream that limits a
// client's calls at once sees no more than a push would send it. One writer
// stores what the fetchers bring, every bill that has arrived in one commit,
// so commits overlap the next fetches and a big catalogue does not wait on
// a disk flush per bill. A bill the upstream refuses or mangles is skipped;
// the store keeps what it had and the next pull asks again.
func (s *Syncer) fetchBills(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	bodies := make(chan []byte, s.cfg.FetchWorkers)
	var (
		mu     gosync.Mutex
		failed int
		first  error
	)
	fail := func(err error) {
		mu.Lock()
		failed++
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	stored := make(chan struct{})
	go func() {
		defer close(stored)
		for body := range bodies {
			batch := [][]byte{body}
		more:
			for len(batch) < maxBillsPerCommit {
				select {
				case b, ok := <-bodies:
					if !ok {
						break more
					}
					batch = append(batch, b)
				default:
					break more
				}
			}
			n, errs, err := s.st.PutBills(batch, time.Now())
			if err != nil {
				s.storeFailed("store bills", err, "bills", len(batch))
				for range batch {
					fail(err)
				}
				continue
			}
			for _, err := range errs {
				if err != nil {
					s.storeFailed("store a bill", err)
					fail(err)
				}
			}
			s.m.billsFetched.Add(int64(n))
		}
	}()

	lim := newLimiter(1, s.cfg.FetchWorkers, time.Now())
	done := make(chan fetched)
	queue := slices.Clone(ids)
	refusals := make(map[string]int)
	inFlight := 0
	pause := time.NewTimer(time.Hour)
	defer pause.Stop()
	for {
		now := time.Now()
		w := lim.window(now)
		held := s.backoff.until(now) // the upstream-wide wait holds the fetches too
		ended := s.backoff.changed()
		if !held.IsZero() {
			w = 0
		}
		for inFlight < w && len(queue) > 0 && ctx.Err() == nil && s.Online() {
			id := queue[0]
			queue = queue[1:]
			inFlight++
			go func(load sample) { done <- s.fetchOne(ctx, id, load) }(sample{sentAt: now, inFlight: inFlight, window: w})
		}
		if inFlight == 0 && (len(queue) == 0 || ctx.Err() != nil || !s.Online()) {
			break
		}
		var wake <-chan time.Time
		if inFlight == 0 { // the upstream asked to wait (Retry-After), or the backoff holds
			pause.Reset(time.Until(later(lim.pauseUntil, held)))
			wake = pause.C
		}
		select {
		case <-ended: // the backoff's delay ended early: look again
		case f := <-done:
			inFlight--
			lim.observe(f.load, time.Now())
			switch {
			case f.refused && refusals[f.id] < maxFetchRefusals:
				refusals[f.id]++
				queue = append(queue, f.id) // later: the upstream is busy now
			case errors.Is(f.err, errNoBill):
			case f.err != nil:
				fail(f.err)
			default:
				bodies <- f.body
			}
		case <-wake:
		}
	}
	close(bodies)
	<-stored
	if failed > 0 {
		return fmt.Errorf("%d of %d bills not fetched, first: %w", failed, len(ids), first)
	}
	return nil
}

// maxBillsPerCommit bounds the bills one commit of fetchBills stores.
const maxBillsPerCommit = 512

// maxFetchRefusals is how often one pull asks a bill again that the
// upstream refused as busy (429, 503) before it leaves it to the next pull.
const maxFetchRefusals = 8

// fetched is one bill fetch of fetchBills.
type fetched struct {
	id      string
	body    []byte
	err     error
	refused bool   // 429 or 503: the upstream is busy; ask again
	load    sample // what the answer says about the upstream's load
}

// fetchOne fetches one bill for fetchBills and says what the answer tells
// the fetch window. A refusal (429, 503) is an answer, as for a push: the
// upstream is there and busy, which narrows the window and does not count
// towards offline.
func (s *Syncer) fetchOne(ctx context.Context, id string, load sample) fetched {
	f := fetched{id: id, load: load}
	if !shopbridge.ValidID(id) {
		f.err = fmt.Errorf("bill id %q is not a whole number", id)
		return f
	}
	resp, err := s.call(ctx, request{kind: shopbridge.KindUpstreamBill, method: http.MethodGet, path: "/api/v2/bill/byid/" + id}, true,
		func(r *response) error { return checkBill(id, r.body) })
	switch {
	case resp != nil && busyStatus(resp.status):
		f.refused, f.err = true, err
		f.load.sig = sigRefused
		f.load.retryAfter = parseRetryAfter(resp.header.Get("Retry-After"), time.Now())
	case err == nil || errors.Is(err, errNoBill):
		f.err = err
		f.load.sig = sigOK
		if resp != nil {
			f.load.rtt = resp.rtt
		}
		if err == nil {
			f.body = resp.body
		}
	case ctx.Err() != nil:
		f.err = err
		f.load.sig = sigNone
	case resp != nil && !retryable(resp.status):
		// A bill the upstream refuses or mangles says nothing of its load.
		f.err = err
		f.load.sig, f.load.rtt = sigOK, resp.rtt
	default:
		f.err = err
		f.load.sig = sigFailed
	}
	return f
}

// storeBill fetches one bill and stores its bytes.
func (s *Syncer) storeBill(ctx context.Context, id string) error {
	body, err := s.fetchBill(ctx, id)
	if err != nil {
		return err
	}
	if _, _, err := s.st.PutBill(body, time.Now()); err != nil {
		s.storeFailed("store a bill", err, "id", id)
		return err
	}
	s.m.billsFetched.Add(1)
	return nil
}

// notIn returns the summaries of part whose bill all does not carry. When
// the no-parameter list and list?date=today of one pull both carry a bill,
// the no-parameter entry's bytes are the ones kept, even if the two differ:
// that list is what /api/v2/list serves, and applying both would swap the
// stored bytes twice and fetch the bill again on every pull.
func notIn(part, all []shopbridge.BillSummary) []shopbridge.BillSummary {
	in := make(map[string]bool, len(all))
	for _, sum := range all {
		in[sum.ID] = true
	}
	out := make([]shopbridge.BillSummary, 0, len(part))
	for _, sum := range part {
		if !in[sum.ID] {
			out = append(out, sum)
		}
	}
	return out
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// BillByID reads a bill the store misses through to the upstream: at most
// the read-through timeout (2 s), only while the upstream is online. It
// stores the bill and returns it, or returns an ENOTFOUND error.
func (s *Syncer) BillByID(ctx context.Context, id string) (*shopbridge.Bill, error) {
	if !shopbridge.ValidID(id) {
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %q", id)
	}
	if !s.Online() {
		s.m.readThrough.offline.Add(1)
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %s (the upstream is offline)", id)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadThroughTimeout)
	defer cancel()
	body, err := s.fetchBill(ctx, id)
	if errors.Is(err, errNoBill) {
		s.m.readThrough.miss.Add(1)
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %s, here or upstream", id)
	}
	if err != nil {
		s.m.readThrough.err.Add(1)
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %s (the upstream failed: %v)", id, err)
	}
	b, _, err := s.st.PutBill(body, time.Now())
	if err != nil {
		return nil, fmt.Errorf("store bill %s read from the upstream: %w", id, err)
	}
	s.m.readThrough.hit.Add(1)
	return b, nil
}

// ListByNumber asks the upstream's list for a bill number while it is
// online (at most the read-through timeout), stores the bills it names
// (fetching the full bills) and returns their summaries. When the upstream
// is offline or has no such bill the error is ENOTFOUND.
func (s *Syncer) ListByNumber(ctx context.Context, number string) ([]shopbridge.BillSummary, error) {
	if number == "" {
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "number", "no bill number given")
	}
	if !s.Online() {
		s.m.readThrough.offline.Add(1)
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "number", "no bill numbered %q (the upstream is offline)", number)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadThroughTimeout)
	defer cancel()
	sums, err := s.list(ctx, url.Values{"number": {number}})
	if err != nil {
		s.m.readThrough.err.Add(1)
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "number", "no bill numbered %q (the upstream failed: %v)", number, err)
	}
	// Keep only what was asked for: the upstream may ignore the parameter.
	match := sums[:0]
	for _, sum := range sums {
		if sum.Number == number {
			match = append(match, sum)
		}
	}
	if len(match) == 0 {
		s.m.readThrough.miss.Add(1)
		return nil, shopbridge.Errorf(shopbridge.ENOTFOUND, "number", "no bill numbered %q, here or upstream", number)
	}
	fetch, err := s.st.ApplyList(match, storage.ListPartial, time.Now())
	if err != nil {
		return nil, fmt.Errorf("store bills numbered %q read from the upstream: %w", number, err)
	}
	for _, id := range fetch {
		if err := s.storeBill(ctx, id); err != nil && !errors.Is(err, errNoBill) {
			s.log.Warn("read-through bill not fetched", "id", id, "number", number, "err", err)
		}
	}
	s.m.readThrough.hit.Add(1)
	return match, nil
}
