package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
)

// Push tuning.
const (
	pushBuffer     = 2048                   // queued receipts held in memory for dispatch
	pushRetryBase  = 200 * time.Millisecond // first retry of a receipt
	pushRetryMax   = 5 * time.Second        // longest wait between retries of one key
	retryAfterMax  = 30 * time.Second       // the most a Retry-After is honoured
	pushRescanKeep = 256                    // below this many pending, reread the outbox from its start
	// unrecordedMax bounds the receipts sent whose outcome the store has
	// not recorded yet, as a multiple of the window's cap: a slow disk
	// does not hold the window's slots, but what a crash can make go
	// twice stays bounded.
	unrecordedMax = 2
)

// pusher delivers the outbox. One goroutine (run) owns its maps and
// decides what goes next; each push runs in a goroutine of its own and
// reports back on done twice: when the upstream has answered, which frees
// its place in the window, and once the store has recorded the outcome,
// which frees its order key. So the receipts in flight are exactly those
// the upstream may have without the store knowing, and the window counts
// only what the upstream is working on, not the store's fsyncs.
type pusher struct {
	s *Syncer

	pending    []*shopbridge.Receipt // queued, not in flight, ordered by Seq
	known      map[string]bool       // event ids pending or in flight
	loadedTo   uint64                // highest Seq read from the outbox
	busy       map[string]bool       // order keys with a receipt in flight
	inFlight   int                   // sent, outcome not yet recorded
	atUpstream int                   // sent, not yet answered: what the window bounds
	keys       map[string]*keyState  // order keys that failed lately
	lim        *limiter              // the window (limit.go)
	done       chan pushResult
}

type keyState struct {
	fails     int
	notBefore time.Time
	transport bool // the last failure was no answer at all, not a refusal
}

type pushResult struct {
	r          *shopbridge.Receipt
	outcome    string // delivered, retry, parked, abandoned
	retryAfter time.Duration
	transport  bool   // retry after no answer (refused, reset, timeout)
	load       sample // what it says about the upstream's load, for the window
	recorded   bool   // the second report: the store has the outcome
}

// Push outcomes.
const (
	outDelivered = "delivered"
	outRetry     = "retry"
	outParked    = "parked"
	outAbandoned = "abandoned"
)

func newPusher(s *Syncer) *pusher {
	return &pusher{
		s:     s,
		known: map[string]bool{},
		busy:  map[string]bool{},
		keys:  map[string]*keyState{},
		lim:   newLimiter(s.cfg.InFlightMin, s.cfg.InFlight, time.Now()),
		done:  make(chan pushResult),
	}
}

// run is the dispatch loop: it wakes on a new receipt, a finished push, a
// state change, a retry coming due or the periodic rescan (which picks up
// receipts an operator put back), and stops when ctx ends after the pushes
// in flight have reported.
func (p *pusher) run(ctx context.Context) {
	s := p.s
	rescan := time.NewTicker(s.cfg.Interval)
	defer rescan.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	p.load(true)
	s.window.Store(int64(p.lim.window(time.Now())))
	for {
		changed := s.changed()
		ended := s.backoff.changed()
		next := p.dispatch(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			for p.inFlight > 0 {
				p.report(<-p.done)
			}
			return
		case <-s.st.Notify():
			// A new receipt, or one put back at its old place (Retry):
			// rereading from the start finds both while the window is small.
			p.load(true)
		case res := <-p.done:
			p.report(res)
			if res.recorded && len(p.pending) < pushBuffer/2 {
				p.load(false)
			}
		case <-changed:
			if s.Online() {
				// The upstream is back: receipts that failed for want of
				// any answer go now; those it refused keep their backoff.
				// The window grows again as at start: what it learned
				// before the outage may not hold now.
				for key, ks := range p.keys {
					if ks.transport {
						delete(p.keys, key)
					}
				}
				p.lim.recover(time.Now())
				p.load(true)
			}
		case <-ended: // the backoff's delay ended early: a success
		case <-timer.C:
		case <-rescan.C:
			p.load(true)
		}
	}
}

// load reads queued receipts into the window. With fromStart it reads the
// outbox from its beginning, picking up receipts put back at old places.
func (p *pusher) load(fromStart bool) {
	after := p.loadedTo
	if fromStart {
		if len(p.pending) > pushRescanKeep && p.loadedTo > 0 {
			// A full window: rescanning would reread what is held.
			fromStart = false
		} else {
			after = 0
		}
	}
	room := pushBuffer - len(p.pending)
	if room <= 0 {
		return
	}
	rs, err := p.s.st.Outbox(after, room+p.inFlight)
	if err != nil {
		p.s.log.Error("read the outbox", "err", err)
		return
	}
	added := false
	for _, r := range rs {
		if r.Seq > p.loadedTo {
			p.loadedTo = r.Seq
		}
		if p.known[r.EventID] {
			continue
		}
		p.known[r.EventID] = true
		p.pending = append(p.pending, r)
		added = true
	}
	if added && fromStart {
		sort.Slice(p.pending, func(i, j int) bool { return p.pending[i].Seq < p.pending[j].Seq })
	}
	p.s.pending.Store(int64(len(p.pending)))
}

// dispatch starts pushes for the oldest receipt of each order key that is
// free and due, while there is room in the window and the upstream is
// online. It returns when the earliest held-back retry or the end of a
// pause the upstream asked for comes due (zero: none).
func (p *pusher) dispatch(ctx context.Context) (next time.Time) {
	now := time.Now()
	window := p.lim.window(now)
	held := p.s.backoff.until(now) // the upstream-wide wait (backoff.go)
	if !held.IsZero() {
		window = 0
	}
	p.s.window.Store(int64(window))
	if ctx.Err() != nil || !p.s.Online() || len(p.pending) == 0 {
		return time.Time{}
	}
	if window == 0 {
		return later(p.lim.pauseUntil, held)
	}
	blocked := make(map[string]bool, len(p.busy)+window)
	kept := p.pending[:0]
	for i, r := range p.pending {
		if p.atUpstream >= window || p.inFlight >= unrecordedMax*p.s.cfg.InFlight {
			kept = append(kept, p.pending[i:]...)
			break
		}
		key := r.OrderKey()
		if p.busy[key] || blocked[key] {
			kept = append(kept, r)
			blocked[key] = true
			continue
		}
		blocked[key] = true
		if ks := p.keys[key]; ks != nil && ks.notBefore.After(now) {
			if next.IsZero() || ks.notBefore.Before(next) {
				next = ks.notBefore
			}
			kept = append(kept, r)
			continue
		}
		p.busy[key] = true
		p.inFlight++
		p.atUpstream++
		p.s.inFlight.Add(1)
		go p.push(r, sample{sentAt: now, inFlight: p.atUpstream, window: window})
	}
	// Clear the tail the compaction left behind so receipts can be freed.
	for i := len(kept); i < len(p.pending); i++ {
		p.pending[i] = nil
	}
	p.pending = kept
	p.s.pending.Store(int64(len(p.pending)))
	return next
}

// report takes one of a push's two reports.
func (p *pusher) report(res pushResult) {
	if res.recorded {
		p.finish(res)
		return
	}
	p.atUpstream--
	// A pause the upstream asked for is logged by the backoff, once
	// (Syncer.judge), not here for every receipt it answered.
	p.lim.observe(res.load, time.Now())
}

// finish books a push's recorded outcome.
func (p *pusher) finish(res pushResult) {
	key := res.r.OrderKey()
	delete(p.busy, key)
	p.inFlight--
	p.s.inFlight.Add(-1)
	switch res.outcome {
	case outDelivered, outParked:
		delete(p.known, res.r.EventID)
		delete(p.keys, key)
	case outRetry, outAbandoned:
		ks := p.keys[key]
		if ks == nil {
			ks = &keyState{}
			p.keys[key] = ks
		}
		if res.outcome == outRetry {
			ks.fails++
			ks.transport = res.transport
			d := backoff(ks.fails, pushRetryBase, pushRetryMax)
			if res.retryAfter > 0 {
				d = max(d, min(res.retryAfter, retryAfterMax))
			}
			ks.notBefore = time.Now().Add(d)
		}
		// Back into the window at its place: it is still the oldest of its key.
		i := sort.Search(len(p.pending), func(i int) bool { return p.pending[i].Seq > res.r.Seq })
		p.pending = append(p.pending, nil)
		copy(p.pending[i+1:], p.pending[i:])
		p.pending[i] = res.r
	}
}

// push sends one receipt, reports the answer, and records the outcome in
// the store before it reports again, so a receipt counts as in flight
// until the store knows. load describes how it was sent; push adds what
// the answer says.
func (p *pusher) push(r *shopbridge.Receipt, load sample) {
	s := p.s
	res := pushResult{r: r, load: load}
	defer func() {
		res.recorded = true
		p.done <- res
	}()

	headers := make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if shopbridge.IsEvotorHeader(k) {
			headers[k] = v
		}
	}
	req := request{kind: shopbridge.KindUpstreamReceipt, method: http.MethodPost, path: "/api/v2/receipts", body: r.Body,
		headers: headers, device: r.DeviceID, receipt: r.EventID, maxBody: shopbridge.MaxJournalBody}
	sent := time.Now()
	resp, d, err := s.client.do(s.pushCtx, req)
	now := time.Now()
	var note string
	switch {
	case resp != nil && resp.status >= 200 && resp.status <= 299:
		// The status line is the verdict: a body cut short or too long
		// after a 2xx does not undo the delivery.
		res.outcome = outDelivered
		res.load.sig, res.load.rtt = sigOK, resp.rtt
		if err != nil {
			note = "delivered; " + err.Error()
			res.load.sig = sigFailed // the answer did not come whole
		}
	case err != nil && s.pushCtx.Err() != nil:
		res.outcome = outAbandoned
		note = "abandoned at shutdown: " + err.Error()
	case err != nil:
		res.outcome = outRetry
		res.transport = true
		res.load.sig = sigFailed
		note = err.Error()
	case retryable(resp.status):
		res.outcome = outRetry
		note = excerpt(resp)
		res.retryAfter = parseRetryAfter(resp.header.Get("Retry-After"), now)
		res.load.sig = sigFailed
		if resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable {
			res.load.sig, res.load.retryAfter = sigRefused, res.retryAfter
		}
	default:
		res.outcome = outParked
		note = "parked: " + excerpt(resp)
	}
	// The backoff counts from the dispatch, which looked at its wait.
	s.judge(resp, err, load.sentAt, "POST /api/v2/receipts: "+answerOrError(resp, err))
	s.client.record(req, resp, d, note)
	p.done <- pushResult{r: r, load: res.load}

	var serr error
	switch res.outcome {
	case outDelivered:
		serr = s.st.MarkDelivered(r.EventID, now)
		s.setLast(&s.lastPush, now)
		s.m.pushes.delivered.Add(1)
		s.succeeded(sent)
	case outRetry:
		serr = s.st.MarkFailed(r.EventID, note)
		s.m.pushes.retry.Add(1)
		switch {
		case err != nil:
			// No answer at all: the upstream may be gone.
			s.failed(fmt.Errorf("push receipt %s: %w", r.EventID, err), sent)
		case busyStatus(resp.status):
			// Busy, not down, as for any call (pull.go's call).
			s.reachable(sent, fmt.Errorf("push receipt %s: %s", r.EventID, note))
		default:
			// A 5xx to a receipt says nothing of the upstream as a
			// whole either way: the lists may be served (it stays
			// online) or failing too (they make it offline). Counted
			// as an answer, it would reset the lists' failures at every
			// window and an upstream failing everything never went
			// offline; the upstream-wide backoff has it already.
		}
		s.log.Warn("receipt push failed; will retry", "event_id", r.EventID, "bill_id", r.BillID, "err", note)
	case outParked:
		serr = s.st.Park(r.EventID, excerpt(resp))
		s.m.pushes.parked.Add(1)
		s.log.Warn("receipt parked: the upstream refused it", "event_id", r.EventID, "bill_id", r.BillID,
			"answer", excerpt(resp))
	}
	if serr != nil {
		// The upstream's verdict is not on disk: keep the receipt queued
		// here; it goes again (a duplicate at worst, with the same id).
		s.storeFailed("record a push outcome", serr, "event_id", r.EventID, "outcome", res.outcome)
		if res.outcome != outRetry {
			res.outcome = outRetry
			if errors.Is(serr, context.Canceled) {
				res.outcome = outAbandoned
			}
		}
	}
}

// retryAfterLongest bounds the seconds parseRetryAfter reads (a day), so
// a huge number cannot overflow a Duration; callers cap far lower.
const retryAfterLongest = 86400

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date
// (any of the three forms of RFC 9110 §5.6.7); 0 for none, a date in the
// past, or anything else.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(min(n, retryAfterLongest)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
