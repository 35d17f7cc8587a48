// Package daemon wires shopbridge together: the store, the journal writer,
// upstream sync, the HTTP server and discovery. Open returns once the
// listener is bound; Close undoes everything in reverse order.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"syscall"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/discovery"
	"github.com/shopbridge/shopbridge/storage"
	upsync "github.com/shopbridge/shopbridge/sync"
)

// ShutdownGrace is how long Close lets requests in flight finish.
const ShutdownGrace = 10 * time.Second

// Daemon is one running shopbridge.
type Daemon struct {
	Config Config
	Logger *slog.Logger
	// Now is the clock for date=today; tests may set it.
	Now func() time.Time

	Store     *storage.Store
	journal   *journalWriter
	syncer    *upsync.Syncer
	server    *api.Server
	http      *http.Server
	ln        net.Listener
	announcer *discovery.Announcer
	started   time.Time
	serveErr  chan error
}

// New returns a daemon for cfg; nothing runs until Open.
func New(cfg Config, logger *slog.Logger) *Daemon {
	if logger == nil {
		logger = slog.Default()
	}
	return &Daemon{Config: cfg, Logger: logger, Now: time.Now}
}

// StartError is a runtime failure at start (port taken, store locked): the
// process exits 1 with its one line.
type StartError struct{ Err error }

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Open opens the store, starts the journal, sync and HTTP server, and
// returns once the listener is bound and discovery started.
func (d *Daemon) Open(ctx context.Context) (err error) {
	d.started = time.Now()
	defer func() {
		if err != nil {
			d.Close()
			err = &StartError{err}
		}
	}()
	cfg := d.Config
	d.Store, err = storage.Open(filepath.Join(cfg.DataDir, storage.FileName), storage.Options{Logger: d.Logger})
	if err != nil {
		return err
	}
	if cfg.Demo {
		if err := SeedDemo(d.Store); err != nil {
			return fmt.Errorf("seed demo bills: %w", err)
		}
	}
	d.journal = newJournalWriter(d.Store, d.Logger, cfg.JournalMaxAge, cfg.JournalMaxSize)
	d.journal.open()

	var readThrough shopbridge.ReadThrough
	var metrics []shopbridge.MetricsWriter
	if cfg.Upstream != "" {
		d.syncer = upsync.New(upsync.Config{URL: cfg.Upstream, Token: cfg.UpstreamToken, Interval: cfg.SyncInterval,
			InFlight: cfg.PushInFlight,
			Journal:  d.journal, Logger: d.Logger}, d.Store)
		readThrough = d.syncer
		metrics = append(metrics, d.syncer)
	}
	metrics = append(metrics, journalMetrics{d.journal})
	d.server = api.New(api.Config{
		Store: d.Store, ReadThrough: readThrough, Journal: d.journal, Logger: d.Logger,
		TerminalToken: cfg.TerminalToken, AdminToken: cfg.AdminToken, Allow: cfg.Allow,
		Timezone: cfg.Timezone, Now: func() time.Time { return d.Now() }, Status: d.status, BriefStatus: d.briefStatus, Metrics: metrics,
	})

	d.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen on %s: the port is already in use (another shopbridge or program holds it)", cfg.Listen)
		}
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	d.http = &http.Server{
		Handler: d.server,
		// Headers, and a body other than a receipt's (which has a deadline
		// of its own, see api.BodyTime), within 5 s: one deadline for both
		// saves net/http a timer change on every request.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    api.MaxHeaderBytes, // the handler's own limits answer with the Evotor body
		ConnContext:       d.server.ConnContext,
		ErrorLog:          slog.NewLogLogger(d.Logger.With("part", "http").Handler(), slog.LevelWarn),
	}
	d.serveErr = make(chan error, 1)
	srv, ln := d.http, api.Listener(d.ln) // Close clears the fields
	go func() { d.serveErr <- srv.Serve(ln) }()

	if d.syncer != nil {
		if err := d.syncer.Open(ctx); err != nil {
			return fmt.Errorf("start sync: %w", err)
		}
	}
	if cfg.MDNS {
		d.announcer = discovery.New(discovery.Config{Instance: cfg.Name, InstanceID: d.Store.InstanceID(),
			Version: shopbridge.Version, Port: d.Port(), Ifaces: cfg.MDNSIfaces, Logger: d.Logger})
		if err := d.announcer.Open(ctx); err != nil {
			return fmt.Errorf("start discovery: %w", err)
		}
	}
	d.Logger.Info("listening", "addr", d.Addr(), "data", cfg.DataDir, "upstream", upstreamLabel(cfg.Upstream),
		"mdns", cfg.MDNS, "version", shopbridge.Version, "ready_ms", time.Since(d.started).Milliseconds())
	d.warnStandaloneOutbox("at start")
	return nil
}

// warnStandaloneOutbox says, without an upstream, that receipts in the
// outbox stay there: nothing sends them until an upstream is configured.
func (d *Daemon) warnStandaloneOutbox(when string) {
	if d.Config.Upstream != "" || d.Store == nil {
		return
	}
	if n := d.Store.OutboxLen(); n > 0 {
		d.Logger.Warn("receipts wait in the outbox and stay there until an upstream is configured (--upstream)",
			"outbox", n, "when", when)
	}
}

func upstreamLabel(u string) string {
	if u == "" {
		return "none"
	}
	return u
}

// Addr is the bound listener address.
func (d *Daemon) Addr() string {
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Port is the bound TCP port (what discovery announces).
func (d *Daemon) Port() int {
	if d.ln == nil {
		return 0
	}
	return d.ln.Addr().(*net.TCPAddr).Port
}

// Check tells whether the parts a cashier depends on answer within ctx:
// the HTTP server, asked for /healthz over a new connection to its own
// listener, and the store's reads and commit lock (storage.Store.Ping). The
// service's systemd watchdog pings only while it passes, so a daemon whose
// handlers or store hang is restarted while one that merely runs is not
// mistaken for alive.
func (d *Daemon) Check(ctx context.Context) error {
	if d.ln == nil || d.Store == nil {
		return errors.New("the daemon is not open")
	}
	var errs []error
	if err := d.checkHTTP(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := d.Store.Ping(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkClient makes a new connection for every check: an accept loop that
// stopped would hide behind a kept-alive one.
var checkClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func (d *Daemon) checkHTTP(ctx context.Context) error {
	addr := d.ln.Addr().(*net.TCPAddr)
	host := addr.IP
	if host.IsUnspecified() {
		// A wildcard listener (":8480") is dual-stack in Go: IPv4
		// loopback reaches it.
		host = net.IPv4(127, 0, 0, 1)
	}
	url := "http://" + net.JoinHostPort(host.String(), fmt.Sprint(addr.Port)) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := checkClient.Do(req)
	if err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	// Any answer shows the server is not hung: 403 when --allow leaves out
	// loopback, 503 while the store is degraded (a full disk), which a
	// restart would not cure while reads still serve the registers. The
	// store's own liveness is Ping's to judge.
	resp.Body.Close()
	return nil
}

// Done reports a serving failure after Open.
func (d *Daemon) Done() <-chan error { return d.serveErr }

// Close stops discovery (goodbye), lets requests in flight finish, stops
// sync, writes the last journal entries and closes the store.
func (d *Daemon) Close() error {
	var errs []error
	serving := d.http != nil
	if d.announcer != nil {
		errs = append(errs, d.announcer.Close())
		d.announcer = nil
	}
	if d.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		errs = append(errs, d.http.Shutdown(ctx))
		cancel()
		d.http = nil
	} else if d.ln != nil {
		d.ln.Close()
	}
	if d.syncer != nil {
		errs = append(errs, d.syncer.Close())
		d.syncer = nil
	}
	if d.journal != nil {
		d.journal.close()
		d.journal = nil
	}
	if serving {
		d.warnStandaloneOutbox("at stop")
	}
	if d.Store != nil {
		errs = append(errs, d.Store.Close())
		d.Store = nil
	}
	return errors.Join(errs...)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (d *Daemon) status() api.Status { return d.statusWith(true) }

// briefStatus is the status without the lists that walk the store (parked
// receipts, bills paid twice): the console polls it every 2 s and asks for
// the first few of each itself.
func (d *Daemon) briefStatus() api.Status { return d.statusWith(false) }

func (d *Daemon) statusWith(lists bool) api.Status {
	st := api.Status{Version: shopbridge.Version, InstanceID: d.Store.InstanceID(), Name: d.Config.Name, Addr: d.Addr(),
		StartedAt: d.started, Upstream: shopbridge.UpstreamNone, SyncedAt: timePtr(d.Store.SyncedAt()),
		System: d.Store.System(), PaidTwice: []string{}, ParkedList: []api.ParkedReceipt{}, Terminals: []storage.Terminal{}}
	if s, err := d.Store.Stats(); err == nil {
		st.Store = s
		st.Bills, st.OpenBills, st.Receipts, st.Outbox, st.Parked = s.Bills, s.OpenBills, s.Receipts, s.Outbox, s.Parked
	}
	st.StoreHealth = d.Store.Health()
	st.OutboxOldest = timePtr(d.Store.OldestQueued())
	if lists {
		if ids, err := d.Store.PaidTwice(); err == nil && ids != nil {
			st.PaidTwice = ids
		}
		if rs, err := d.Store.Parked(); err == nil {
			for _, r := range rs {
				st.ParkedList = append(st.ParkedList, api.ParkedReceipt{EventID: r.EventID, BillID: r.BillID,
					ReceivedAt: r.ReceivedAt, Attempts: r.Attempts, Answer: r.LastError})
			}
		}
	}
	if d.journal != nil {
		st.Terminals = d.journal.Terminals()
		st.Journal = api.JournalStatus{Written: d.journal.written.Load(), Dropped: d.journal.dropped.Load(),
			Queued: d.journal.queued(), LagMS: float64(d.journal.lagNS.Load()) / 1e6}
	}
	if d.syncer != nil {
		ss := d.syncer.Status()
		st.Upstream, st.UpstreamURL, st.LastError, st.LastErrorAt = ss.Upstream, ss.UpstreamURL, ss.LastError, timePtr(ss.LastErrorAt)
		st.UpstreamSince, st.LastPullAt, st.LastPushAt = timePtr(ss.UpstreamSince), timePtr(ss.LastPullAt), timePtr(ss.LastPushAt)
	}
	if d.announcer != nil {
		st.MDNS = d.announcer.Status()
	} else {
		st.MDNS = shopbridge.MDNSStatus{State: "off", Interfaces: []shopbridge.MDNSInterface{}}
	}
	return st
}

// SeedDemo fills an empty store with the simulator's sample bills, so a
// person can try the API with curl right away.
func SeedDemo(st *storage.Store) error {
	if s, err := st.Stats(); err != nil || s.Bills > 0 {
		return err
	}
	data := crmsim.DefaultData()
	now := time.Now()
	var sums []shopbridge.BillSummary
	for _, raw := range data.Bills {
		b, _, err := st.PutBill(raw, now)
		if err != nil {
			return err
		}
		sums = append(sums, b.Summary)
	}
	if _, err := st.ApplyList(sums, storage.ListPartial, now); err != nil {
		return err
	}
	return st.SetSystem(data.System)
}

// journalMetrics exposes the journal writer's counters.
type journalMetrics struct{ j *journalWriter }

func (m journalMetrics) WriteMetrics(w io.Writer) {
	shopbridge.Metric{Name: "shopbridge_journal_written_total", Type: "counter", Help: "Journal entries written."}.
		Write(w, float64(m.j.written.Load()))
	shopbridge.Metric{Name: "shopbridge_journal_dropped_total", Type: "counter", Help: "Journal entries dropped because the writer fell behind."}.
		Write(w, float64(m.j.dropped.Load()))
	shopbridge.Metric{Name: "shopbridge_journal_queued", Type: "gauge", Help: "Journal entries waiting to be written."}.
		Write(w, float64(m.j.queued()))
	shopbridge.Metric{Name: "shopbridge_journal_lag_seconds", Type: "gauge", Help: "Age of the oldest entry of the last batch when it was written."}.
		Write(w, float64(m.j.lagNS.Load())/1e9)
}
