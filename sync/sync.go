// Package sync keeps shopbridge's store in step with the upstream CRM API:
// it pulls bills down on a timer, pushes receipts up from the outbox in
// order, tracks whether the upstream is online and reads misses through to
// it. Importers alias it (upsync) to keep the standard library's sync in
// reach.
package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// Config configures a Syncer.
type Config struct {
	URL      string             // the upstream base URL (--upstream); calls go to URL/api/v2/...
	Token    string             // --upstream-token; sent as a Bearer token, never logged or journaled
	Interval time.Duration      // --sync-interval; default 10s
	InFlight int                // --push-in-flight: the cap of the adaptive push window (limit.go); default 64
	Journal  shopbridge.Journal // upstream exchanges and state changes; nil records nothing
	Logger   *slog.Logger

	// Timeout bounds one upstream request; default 5s. Read-through calls
	// are further bounded by ReadThroughTimeout.
	Timeout time.Duration
	// ReadThroughTimeout bounds a read-through miss; default 2s.
	ReadThroughTimeout time.Duration
	// MaxBody caps an upstream answer; default 8 MiB.
	MaxBody int64
	// FetchWorkers caps how many bills are fetched at once (the fetch
	// window, which adapts as the push window does, from 8); default
	// InFlight.
	FetchWorkers int
	// OutageSummaryEvery is how often an outage is summed up in the log
	// (probes are not logged one by one); default 5 min.
	OutageSummaryEvery time.Duration
	// InFlightMin is the floor of the push window; default 1. Equal to
	// InFlight it fixes the window at InFlight: the push before the
	// adaptive window, which the benchmark compares against.
	InFlightMin int
}

// Syncer pulls bills from and pushes receipts to the upstream.
type Syncer struct {
	cfg    Config
	st     *storage.Store
	log    *slog.Logger
	client *client
	cerr   error // a bad URL, reported by Open
	clock  *clockMeter

	mu          gosync.Mutex
	online      bool
	since       time.Time
	fails       int       // consecutive failures
	failSent    time.Time // when the newest of them was sent
	lastPull    time.Time
	lastPush    time.Time
	lastHello   time.Time
	lastErr     string
	lastErrAt   time.Time
	stateChange chan struct{} // closed and replaced on every online/offline change
	everOnline  bool          // the first success is first contact, not a recovery
	outageFails int           // failures while offline, for the outage summary
	outageLog   time.Time     // when the outage was last logged
	system      string        // the system of the last hello, for the log
	busyLog     time.Time     // when a wait of the backoff was last logged

	// backoff is the upstream-wide wait every call consults (backoff.go).
	backoff *upstreamBackoff

	inFlight atomic.Int64
	window   atomic.Int64 // the push window (limit.go)
	pending  atomic.Int64
	m        metrics

	pullNow chan struct{}
	cancel  context.CancelFunc
	pushCtx context.Context // in-flight pushes; outlives cancel by a grace period
	pushEnd context.CancelFunc
	wg      gosync.WaitGroup
	opened  bool
}

// New returns a Syncer for the store. It does nothing until Open.
func New(cfg Config, st *storage.Store) *Syncer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = DefaultInFlight
	}
	cfg.InFlightMin = min(max(cfg.InFlightMin, 1), cfg.InFlight)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ReadThroughTimeout <= 0 {
		cfg.ReadThroughTimeout = 2 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.FetchWorkers <= 0 {
		cfg.FetchWorkers = cfg.InFlight
	}
	if cfg.OutageSummaryEvery <= 0 {
		cfg.OutageSummaryEvery = DefaultOutageSummaryEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Syncer{
		cfg:         cfg,
		st:          st,
		log:         cfg.Logger.With("part", "sync"),
		since:       time.Now(),
		stateChange: make(chan struct{}),
		pullNow:     make(chan struct{}, 1),
		backoff:     newUpstreamBackoff(upstreamBackoffBase, upstreamBackoffMax),
	}
	s.client, s.cerr = newClient(cfg.URL, cfg.Token, cfg.Timeout, cfg.MaxBody, cfg.InFlight+cfg.FetchWorkers, cfg.Journal)
	s.clock = newClockMeter(s.log)
	if s.client != nil {
		s.client.clock = s.clock
	}
	return s
}

// Open starts the pull and push loops and returns at once. The upstream is
// offline until its first successful answer, which the first pull asks for
// right away.
func (s *Syncer) Open(ctx context.Context) error {
	if s.cerr != nil {
		return s.cerr
	}
	if s.opened {
		return errors.New("sync: already open")
	}
	s.opened = true
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.pushCtx, s.pushEnd = context.WithCancel(context.WithoutCancel(ctx))
	s.log.Info("syncing", "upstream", s.client.redacted(), "interval", s.cfg.Interval, "in_flight", s.cfg.InFlight)
	p := newPusher(s)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.pullLoop(ctx) }()
	go func() { defer s.wg.Done(); p.run(ctx) }()
	return nil
}

// closeGrace is how long Close lets in-flight pushes finish before it
// abandons them (they stay in the outbox and go again after a restart).
const closeGrace = 2 * time.Second

// Close stops the loops and waits for in-flight pushes to finish or be
// abandoned. It is safe to call more than once and without Open.
func (s *Syncer) Close() error {
	if !s.opened || s.cancel == nil {
		return nil
	}
	s.cancel()
	t := time.AfterFunc(closeGrace, s.pushEnd)
	s.wg.Wait()
	t.Stop()
	s.pushEnd()
	s.client.close()
	s.cancel = nil
	return nil
}

// Online reports whether the upstream is believed reachable.
func (s *Syncer) Online() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online
}

// Status returns the syncer's state.
func (s *Syncer) Status() shopbridge.SyncStatus {
	busyUntil, busyReason, waves := s.backoff.state(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	st := shopbridge.SyncStatus{
		BusyUntil:     busyUntil,
		BusyReason:    busyReason,
		BackoffWaves:  waves,
		Upstream:      shopbridge.UpstreamOffline,
		UpstreamSince: s.since,
		LastPullAt:    s.lastPull,
		LastPushAt:    s.lastPush,
		LastHelloAt:   s.lastHello,
		LastError:     s.lastErr,
		LastErrorAt:   s.lastErrAt,
		InFlight:      int(s.inFlight.Load()),
		PushWindow:    int(s.window.Load()),
		Pending:       int(s.pending.Load()),
		Clock:         s.clock.status(),
	}
	if s.client != nil {
		st.UpstreamURL = s.client.redacted()
	}
	if s.online {
		st.Upstream = shopbridge.UpstreamOnline
	}
	return st
}

// offlineAfter is how many consecutive failures make the upstream offline.
const offlineAfter = 2

// DefaultOutageSummaryEvery is how often the log sums up an outage.
const DefaultOutageSummaryEvery = 5 * time.Minute

// succeeded records an answer that shows the upstream works; the last
// error is no longer news.
//
// A call sent before the last change of state tells nothing about the
// upstream since: a bill fetch already on its way when the outage began may
// still come back, and must not bring the upstream online for a moment
// (and log a second outage) while every probe fails.
func (s *Syncer) succeeded(sent time.Time) { s.reachable(sent, nil) }

// reachable records an answer: the upstream is there. With busy set (a
// 429 or 503, which the backoff answers) that answer is kept as the last
// error; it never counts towards offline.
func (s *Syncer) reachable(sent time.Time, busy error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.online && sent.Before(s.since) {
		return
	}
	if s.fails > 0 && sent.Before(s.failSent) {
		// Sent before a call that has failed since (a bill fetch on its
		// way when the outage began): older news than that failure, it
		// does not end the streak, or the log would get a line per
		// failure that such answers interleave.
		return
	}
	s.fails = 0
	s.lastErr, s.lastErrAt = "", time.Time{}
	if busy != nil {
		s.lastErr, s.lastErrAt = busy.Error(), time.Now()
	}
	if !s.online {
		s.setStateLocked(true, "")
	}
}

// failed records a failed exchange; the second in a row makes the upstream
// offline. It reports whether the caller should log the failure: while
// online, yes; while offline (probes, and at start until first contact) the
// log gets one line when the outage begins and a summary every
// OutageSummaryEvery instead of a line per probe.
func (s *Syncer) failed(err error, sent time.Time) (logIt bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.online && sent.Before(s.since) {
		return false // a call of the outage that ended, answered late
	}
	s.fails++
	if sent.After(s.failSent) {
		s.failSent = sent
	}
	s.lastErr, s.lastErrAt = err.Error(), now
	if !s.online {
		s.outageFails++
	}
	switch {
	case s.online && s.fails >= offlineAfter:
		s.setStateLocked(false, err.Error()) // logs the error with the change
	case s.online:
		return true
	case !s.everOnline && s.outageFails == 1:
		s.outageLog = now
		s.log.Warn("upstream not reachable yet", "upstream", s.client.redacted(), "err", err)
	case now.Sub(s.outageLog) >= s.cfg.OutageSummaryEvery:
		s.outageLog = now
		s.log.Warn("upstream still offline", "upstream", s.client.redacted(), "since", s.since.Format(time.RFC3339),
			"probes_failed", s.outageFails, "err", err)
	}
	return false
}

// judge reports one exchange to the upstream-wide backoff and logs when a
// wait begins: once, and again only after OutageSummaryEvery, so an
// upstream busy on and off does not fill the log.
func (s *Syncer) judge(resp *response, err error, sent time.Time, what string) {
	now := time.Now()
	v, ra := classify(resp, err, now)
	if !s.backoff.observe(v, ra, sent, now, what) {
		return
	}
	s.mu.Lock()
	logIt := s.busyLog.IsZero() || now.Sub(s.busyLog) >= s.cfg.OutageSummaryEvery
	if logIt {
		s.busyLog = now
	}
	s.mu.Unlock()
	if logIt {
		until, _, waves := s.backoff.state(now)
		s.log.Warn("upstream busy: every call waits", "upstream", s.client.redacted(), "until", until.Format(time.RFC3339),
			"for", until.Sub(now).Round(time.Millisecond), "waves_failed", waves, "answer", what)
	}
}

// setStateLocked switches the state, journals and logs it and wakes
// whoever waits on a change. s.mu is held.
func (s *Syncer) setStateLocked(online bool, reason string) {
	now := time.Now()
	was := now.Sub(s.since).Round(time.Millisecond)
	probes := s.outageFails
	first := online && !s.everOnline
	s.online, s.since = online, now
	s.outageFails, s.outageLog = 0, now
	if online {
		s.everOnline = true
	}
	s.m.stateChanges.Add(1)
	close(s.stateChange)
	s.stateChange = make(chan struct{})
	var note string
	switch {
	case first:
		// First contact is not a recovery: there was no outage to time,
		// unless the upstream did not answer at start.
		system := s.system
		note = fmt.Sprintf("online: first contact, system %q", system)
		attrs := []any{"upstream", s.client.redacted(), "system", system}
		if probes > 0 {
			note += fmt.Sprintf(", after %v unreachable (%d probes failed)", was, probes)
			attrs = append(attrs, "unreachable_for", was, "probes_failed", probes)
		}
		s.log.Info("upstream online", attrs...)
	case online:
		note = fmt.Sprintf("offline -> online after %v (%d probes failed)", was, probes)
		s.log.Info("upstream online again", "upstream", s.client.redacted(), "offline_for", was, "probes_failed", probes)
	default:
		note = fmt.Sprintf("online -> offline after %v: %s", was, reason)
		s.log.Warn("upstream offline", "upstream", s.client.redacted(), "online_for", was, "err", reason)
	}
	if s.cfg.Journal != nil {
		s.cfg.Journal.Record(shopbridge.JournalEntry{Time: now, Client: "upstream", Kind: shopbridge.KindUpstreamState,
			Source: "upstream", Note: note})
	}
}

// changed returns a channel closed at the next online/offline change.
func (s *Syncer) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateChange
}

func (s *Syncer) setLast(field *time.Time, t time.Time) {
	s.mu.Lock()
	*field = t
	s.mu.Unlock()
}

// backoff is a capped exponential delay with ±20% jitter for attempt n
// (1-based).
func backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	j := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if rand.IntN(2) == 0 {
		return d - j
	}
	return d + j
}

// wait sleeps d or until one of the channels fires; it reports false when
// ctx ended.
func wait(ctx context.Context, d time.Duration, wake ...<-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var w0, w1 <-chan struct{}
	if len(wake) > 0 {
		w0 = wake[0]
	}
	if len(wake) > 1 {
		w1 = wake[1]
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-w0:
	case <-w1:
	}
	return true
}

// storeFailed logs a failed store write; at debug level when the store
// cannot write at all (a full disk): the store logs that itself, once, and
// each sync cycle would repeat it.
func (s *Syncer) storeFailed(msg string, err error, args ...any) {
	level := slog.LevelError
	if shopbridge.ErrorKind(err) == shopbridge.EUNAVAILABLE {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, msg, append(args, "err", err)...)
}
