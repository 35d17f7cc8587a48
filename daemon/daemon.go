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
	"github.com/shopbridge/shopbridge/discovery"
	"github.com/shopbridge/shopbridge/storage"
	upsync "github.com/shopbridge/shopbridge/sync"
)

// Daemon is one running shopbridge.
type Daemon struct {
	Config Config
	Logger *slog.Logger
	// Now is the clock for date=today; tests may set it.
	Now func() time.Time
	// Mono is the monotonic clock journal retention counts on (see
	// steady.go); nil: the process's own. Tests may set it.
	Mono func() time.Duration

	Store     *storage.Store
	journal   *journalWriter
	backups   *backups
	syncer    *upsync.Syncer
	server    *api.Server // serving from Open to Close; nil otherwise
	ln        net.Listener
	https     *shopbridge.HTTPSStatus
	announcer *discovery.Announcer
	started   time.Time
	// consoleURLs are where a browser opens the console (startup.go).
	consoleURLs []string
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
		return PermissionHint(err, cfg.DataDir)
	}
	if cfg.Demo != nil {
		if err := SeedDemo(d.Store, cfg.Demo); err != nil {
			return fmt.Errorf("seed demo bills: %w", err)
		}
	}
	mono := d.Mono
	if mono == nil {
		mono = monoSince()
	}
	d.journal = newJournalWriter(d.Store, d.Logger, cfg.JournalMaxAge, cfg.JournalMaxSize)
	d.journal.steady = newSteadyClock(d.Store, func() time.Time { return d.Now() }, mono)
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
	d.backups = newBackups(d.Store, cfg, d.Logger)
	d.backups.open()
	metrics = append(metrics, d.backups)
	own := &daemonMetrics{store: d.Store, started: d.started, mdns: cfg.MDNS}
	metrics = append(metrics, own)
	hosts := append(discovery.HostNames(cfg.Name, d.Store.InstanceID()), cfg.AdminHosts...)
	if d.ln, err = listen(cfg.Listen); err != nil {
		return err
	}
	var https *shopbridge.HTTPSStatus
	var tlsLn net.Listener // nil: https-listen none
	if cfg.HTTPSListen != "" {
		sc, err := d.loadServerCert(hosts)
		if err != nil {
			return err
		}
		raw, err := listen(cfg.HTTPSListen)
		if err != nil {
			return err
		}
		tlsLn = api.TLSListener(raw, sc.cert)
		info := sc.info
		info.Addr, info.Port = raw.Addr().String(), raw.Addr().(*net.TCPAddr).Port
		https = &info
	}
	d.https = https
	server := api.New(api.Config{
		Store: d.Store, ReadThrough: readThrough, Journal: d.journal, Logger: d.Logger,
		TerminalToken: cfg.TerminalToken, AdminToken: cfg.AdminToken, Allow: cfg.Allow,
		Hosts:    hosts,
		Timezone: cfg.Timezone, Now: func() time.Time { return d.Now() }, Status: d.status, BriefStatus: d.briefStatus, Metrics: metrics,
		HTTPS: https,
	})
	server.Open(d.ln, tlsLn)
	d.server = server

	if d.syncer != nil {
		if err := d.syncer.Open(ctx); err != nil {
			return fmt.Errorf("start sync: %w", err)
		}
	}
	if cfg.MDNS {
		dc := discovery.Config{Instance: cfg.Name, InstanceID: d.Store.InstanceID(),
			Version: shopbridge.Version, UpstreamID: discovery.UpstreamID(cfg.Upstream, cfg.UpstreamToken),
			Port: d.Port(), Ifaces: cfg.MDNSIfaces, Logger: d.Logger}
		if https != nil {
			dc.HTTPSPort, dc.TLSFingerprint = https.Port, https.Fingerprint
		}
		d.announcer = discovery.New(dc)
		if err := d.announcer.Open(ctx); err != nil {
			return fmt.Errorf("start discovery: %w", err)
		}
		own.announcer.Store(d.announcer)
	}
	d.consoleURLs = consoleURLsFor(d.ln.Addr().(*net.TCPAddr), https, d.lanConsoleAddrs())
	d.logStart()
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
		return "standalone"
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

// listen binds addr, naming a taken port as such.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen on %s: the port is already in use (another shopbridge or program holds it)", addr)
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// HTTPSAddr is the bound HTTPS listener address, "" when it is off.
func (d *Daemon) HTTPSAddr() string {
	if d.https == nil {
		return ""
	}
	return d.https.Addr
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
func (d *Daemon) Done() <-chan error {
	if d.server == nil {
		return nil
	}
	return d.server.Done()
}

// Close stops discovery (goodbye), lets requests in flight finish, stops
// sync, writes the last journal entries and closes the store.
func (d *Daemon) Close() error {
	var errs []error
	serving := d.server != nil
	if d.announcer != nil {
		errs = append(errs, d.announcer.Close())
		d.announcer = nil
	}
	if d.server != nil {
		errs = append(errs, d.server.Close()) // and the listeners
		d.server = nil
	} else if d.ln != nil {
		d.ln.Close() // bound, but Open failed before serving
	}
	if d.syncer != nil {
		errs = append(errs, d.syncer.Close())
		d.syncer = nil
	}
	if d.backups != nil {
		d.backups.close()
		d.backups = nil
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

// status is admin/api/status: the daemon's parts and the store's, each
// list capped at api.StatusListLimit.
func (d *Daemon) status() api.Status {
	st := d.statusWith(true)
	_ = st.ReadStore(d.Store, api.StatusLists{Limit: api.StatusListLimit}) // what fails stays zero, as ever
	return st
}

// briefStatus is the status without the store's part: the console polls
// it every 2 s and reads that part itself, once, with its own lists.
func (d *Daemon) briefStatus() api.Status { return d.statusWith(false) }

// statusWith is the daemon's parts of the status; with lists, the
// registers are capped at api.StatusListLimit (the console's overview
// keeps its own layout).
func (d *Daemon) statusWith(lists bool) api.Status {
	st := api.Status{Version: shopbridge.Version, Name: d.Config.Name, Addr: d.Addr(),
		StartedAt: d.started, Upstream: shopbridge.UpstreamNone, SyncedAt: timePtr(d.Store.SyncedAt()),
		System: d.Store.System(), PaidTwice: []string{}, ParkedList: []api.ParkedReceipt{}, Terminals: []storage.Terminal{},
		ListLimit: api.StatusListLimit, OutboxList: []api.QueueReceipt{}, ConsoleURLs: d.consoleURLs,
		Duplicates: []shopbridge.Duplicate{}, HTTPS: d.https}
	if d.journal != nil {
		st.Terminals = d.journal.Terminals() // newest first
		st.TerminalsCount = len(st.Terminals)
		if lists {
			st.Terminals = st.Terminals[:min(len(st.Terminals), api.StatusListLimit)]
		}
		st.Journal = api.JournalStatus{Written: d.journal.written.Load(), Dropped: d.journal.dropped.Load(),
			Queued: d.journal.queued(), LagMS: float64(d.journal.lagNS.Load()) / 1e6}
	}
	if d.syncer != nil {
		ss := d.syncer.Status()
		st.Upstream, st.UpstreamURL, st.LastError, st.LastErrorAt = ss.Upstream, ss.UpstreamURL, ss.LastError, timePtr(ss.LastErrorAt)
		st.UpstreamSince, st.LastPullAt, st.LastPushAt = timePtr(ss.UpstreamSince), timePtr(ss.LastPullAt), timePtr(ss.LastPushAt)
		st.Clock = ss.Clock
		st.UpstreamBusyUntil, st.UpstreamBusyReason = timePtr(ss.BusyUntil), ss.BusyReason
	}
	if d.backups != nil {
		st.Backup = d.backups.status()
	}
	if d.announcer != nil {
		st.MDNS = d.announcer.Status()
		st.Duplicates = d.announcer.Duplicates()
	} else {
		st.MDNS = shopbridge.MDNSStatus{State: "off", Interfaces: []shopbridge.MDNSInterface{}}
	}
	return st
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
