// Package discovery announces the daemon on the shop LAN by mDNS/DNS-SD
// (SPEC §5) and browses for announced daemons. It is the only package that
// imports github.com/grandcat/zeroconf; its errors become ours here.
//
// How the announcement works: one zeroconf.RegisterProxy server over the LAN
// interfaces, with a host name of our own (derived from the store's instance
// id) and no fixed addresses. Given no addresses, the library answers each
// query with the addresses of the interface the query came in on, so a
// register is never offered an address it cannot reach. Next to it runs our
// own mDNS socket (mdnsConn) for what the library lacks: unsolicited
// announcements when addresses change, answers to A/AAAA queries for our host
// name, and detecting another daemon that uses the same instance name.
// Interfaces and addresses are polled every second; a changed set of
// interfaces means a new registration, because a server joins the multicast
// groups only when it starts.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/miekg/dns"

	"github.com/shopbridge/shopbridge"
)

const protocolVersion = shopbridge.ProtocolVersion

// Timings of the announcement, chosen so that every change reaches the
// wire within the 10 s of SPEC §5.
const (
	pollInterval  = time.Second     // interface and address polling
	retryInterval = 5 * time.Second // after a failure to open UDP 5353
	probeWait     = 600 * time.Millisecond
	ttlService    = uint32(3200) // the library's fixed TTL for PTR, SRV and TXT; ours match it
	ttlHost       = uint32(120)  // RFC 6762 §10 for A/AAAA
)

// fixedAddrs is true where the OS cannot tell on which interface a query
// came in (Windows): there the responder is given the addresses of all LAN
// interfaces, so every interface offers all of them (see docs/discovery.md).
var fixedAddrs = runtime.GOOS == "windows"

// Config says what to announce.
type Config struct {
	Instance   string // --name, e.g. "shopbridge on host"
	InstanceID string // stable store instance id (TXT id=, and the base of our own host name)
	Version    string // TXT ver=
	UpstreamID string // TXT up= (UpstreamID); "" standalone
	Port       int    // the bound TCP port
	// HTTPSPort and TLSFingerprint are the HTTPS listener's port and its
	// certificate's shopbridge.TLSFingerprint (TXT https_port= and
	// tls_sha256=), for a register or installer that pins it; 0 and ""
	// without HTTPS.
	HTTPSPort      int
	TLSFingerprint string
	Ifaces         []string // --mdns-iface; empty = automatic choice of SPEC §5
	Logger         *slog.Logger
}

// Status is the announcer's state for admin/api/status (under "mdns"); the
// type lives in the root package so the HTTP layer can name it.
type Status = shopbridge.MDNSStatus

// InterfaceStatus is one interface announced on and the addresses it offers.
type InterfaceStatus = shopbridge.MDNSInterface

// Announcer announces one daemon. Create it with New, then Open and Close.
type Announcer struct {
	cfg  Config
	log  *slog.Logger
	host string // FQDN, "shopbridge-<id>.local."

	mu      sync.Mutex
	status  Status
	name    string                          // current plain instance name
	byIndex map[int]lanIface                // announced interfaces by index
	peers   map[string]map[string]time.Time // lower-case instance -> foreign SRV target -> expiry
	closed  bool
	dups    map[string]shopbridge.Duplicate // by instance name (duplicates.go)

	peerNews chan struct{}  // another instance's records were seen for the first time
	dupDone  sync.WaitGroup // the duplicate watch

	cancel context.CancelFunc
	done   chan struct{}
	events chan event

	// owned by the run goroutine
	server     *zeroconf.Server
	conn       *mdnsConn
	ifaces     []lanIface
	setKey     string
	pending    map[int]int // ifIndex -> announcements still to send
	lastErr    string
	lastAssert time.Time
}

type eventKind int

const (
	evConflict eventKind = iota // a foreign host announces our instance name
	evGoodbye                   // a foreign host said goodbye for our instance name
	evProbe                     // a foreign host probes for our instance name
)

type event struct {
	kind    eventKind
	foreign string // the other host's name
	ifIndex int
}

// New returns an Announcer for cfg; nothing is sent before Open.
func New(cfg Config) *Announcer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Instance = strings.TrimSpace(cfg.Instance)
	id := cfg.InstanceID
	if strings.TrimSpace(id) == "" {
		id = fmt.Sprintf("%08x", rand.Uint32())
	}
	a := &Announcer{
		cfg:      cfg,
		log:      cfg.Logger.With("part", "discovery"),
		host:     hostLabel(id) + "." + domain,
		peers:    map[string]map[string]time.Time{},
		dups:     map[string]shopbridge.Duplicate{},
		byIndex:  map[int]lanIface{},
		peerNews: make(chan struct{}, 1),
		events:   make(chan event, 32),
		pending:  map[int]int{},
	}
	a.status = Status{State: "off", Host: a.host, Port: cfg.Port, Interfaces: []InterfaceStatus{}, Since: time.Now()}
	if strings.TrimSpace(cfg.InstanceID) == "" {
		a.log.Warn("no instance id given; using a random host name for this run", "host", a.host)
	}
	return a
}

// Open checks the configuration and starts announcing and watching in the
// background; it returns at once. ctx bounds Open only; announcing lasts
// until Close. Failing to open UDP 5353 is not an error
// here: it is logged, shown in Status and retried.
func (a *Announcer) Open(ctx context.Context) error {
	if a.cfg.Instance == "" {
		return shopbridge.Errorf(shopbridge.EINVALID, "--name", "the mDNS instance name is empty")
	}
	if a.cfg.Port <= 0 || a.cfg.Port > 65535 {
		return shopbridge.Errorf(shopbridge.EINVALID, "port", "cannot announce port %d", a.cfg.Port)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open discovery: %w", err)
	}
	a.mu.Lock()
	if a.cancel != nil {
		a.mu.Unlock()
		return errors.New("discovery: announcer already open")
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.done = make(chan struct{})
	a.setState("starting", "")
	a.mu.Unlock()
	a.log.Info("mDNS announcer starting", "instance", a.cfg.Instance, "host", a.host, "port", a.cfg.Port, "ifaces", strings.Join(a.cfg.Ifaces, ","))
	go a.run(runCtx)
	a.dupDone.Add(1)
	go a.watchDuplicates(runCtx)
	return nil
}

// Close says goodbye (TTL 0) on every interface and stops watching.
func (a *Announcer) Close() error {
	a.mu.Lock()
	cancel, done := a.cancel, a.done
	a.closed = true
	a.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	a.dupDone.Wait()
	return nil
}

// Status returns a copy of the current state.
func (a *Announcer) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	s.Interfaces = append([]InterfaceStatus(nil), a.status.Interfaces...)
	if s.Interfaces == nil {
		s.Interfaces = []InterfaceStatus{}
	}
	return s
}

// setState must be called with a.mu held.
func (a *Announcer) setState(state, errText string) {
	if a.status.State != state {
		a.status.Since = time.Now()
	}
	a.status.State = state
	a.status.Error = errText
}

func (a *Announcer) run(ctx context.Context) {
	defer close(a.done)
	defer a.teardown("shutdown")
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-a.events:
			a.handleEvent(ctx, ev)
			continue
		case <-timer.C:
		}
		wait := a.reconcile(ctx)
		timer.Reset(wait)
	}
}

// reconcile brings the registration in line with the interfaces and returns
// when to look again.
func (a *Announcer) reconcile(ctx context.Context) time.Duration {
	chosen, problems, err := chooseIfaces(a.cfg.Ifaces)
	if err != nil {
		a.fail(err.Error())
		return retryInterval
	}
	for _, p := range problems {
		if len(chosen) > 0 && p != a.lastErr {
			a.log.Warn("mDNS interface skipped", "problem", p)
		}
	}
	if len(chosen) == 0 {
		if a.server != nil || a.conn != nil {
			a.teardown("no LAN interface left")
		}
		a.fail(strings.Join(problems, "; "))
		return pollInterval
	}
	key := ifaceSetKey(chosen)
	if fixedAddrs {
		for _, c := range chosen {
			key += "|" + c.addrKey()
		}
	}
	if a.server == nil || key != a.setKey {
		if err := a.publish(ctx, chosen, a.server == nil); err != nil {
			if ctx.Err() != nil {
				return pollInterval // closing
			}
			a.fail(err.Error())
			return retryInterval
		}
		a.setKey = key
		return pollInterval
	}
	// Same interfaces: look for changed addresses.
	for i, c := range chosen {
		old := a.ifaces[i]
		if old.addrKey() != c.addrKey() {
			a.log.Info("address changed; announcing", "iface", c.iface.Name, "addrs", strings.Join(c.addrs(), ","), "was", strings.Join(old.addrs(), ","))
			a.pending[c.iface.Index] = 2 // RFC 6762 §8.3: at least two, one second apart
		}
	}
	a.setIfaces(chosen)
	for idx, n := range a.pending {
		if n <= 0 {
			delete(a.pending, idx)
			continue
		}
		a.announce(idx)
		a.pending[idx] = n - 1
	}
	a.expirePeers()
	return pollInterval
}

// fail records an error state, logging it once per distinct text.
func (a *Announcer) fail(text string) {
	if text != a.lastErr {
		a.log.Error("mDNS announcement not running", "err", text)
		a.lastErr = text
	}
	a.mu.Lock()
	a.setState("error", text)
	a.mu.Unlock()
}

func (a *Announcer) setIfaces(chosen []lanIface) {
	a.ifaces = chosen
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byIndex = make(map[int]lanIface, len(chosen))
	a.status.Interfaces = make([]InterfaceStatus, 0, len(chosen))
	for _, c := range chosen {
		a.byIndex[c.iface.Index] = c
		a.status.Interfaces = append(a.status.Interfaces, InterfaceStatus{Name: c.iface.Name, Addrs: c.addrs()})
	}
}

// publish (re)registers on chosen: it opens a new socket, optionally waits
// for answers about existing instances to pick a free name, starts a new
// zeroconf server, then retires the old server and socket and announces at
// once, so registers see the records refreshed right after the old server's
// goodbye rather than the service leaving.
func (a *Announcer) publish(ctx context.Context, chosen []lanIface, probe bool) error {
	nifs := make([]net.Interface, len(chosen))
	for i, c := range chosen {
		nifs[i] = c.iface
	}
	conn, err := openMDNS(nifs, a.onPacket)
	if err != nil {
		return err
	}
	oldConn, oldServer := a.conn, a.server
	a.mu.Lock()
	a.conn = conn
	a.mu.Unlock()
	a.setIfaces(chosen)
	restore := func() {
		conn.Close()
		a.mu.Lock()
		a.conn = oldConn
		a.mu.Unlock()
	}
	if probe {
		a.queryPeers()
		select {
		case <-ctx.Done():
			restore()
			return ctx.Err()
		case <-time.After(probeWait):
		}
	}
	name := a.pickName()
	server, err := a.register(name, chosen, nifs)
	if err != nil {
		restore()
		return err
	}
	a.server = server
	if oldServer != nil {
		oldServer.Shutdown()
	}
	if oldConn != nil {
		oldConn.Close()
	}
	a.mu.Lock()
	a.name = name
	a.status.Instance = name
	a.setState("announcing", "")
	a.mu.Unlock()
	a.lastErr = ""
	for _, c := range chosen {
		a.pending[c.iface.Index] = 2
	}
	for idx := range a.pending {
		a.announce(idx)
		a.pending[idx]--
	}
	var names []string
	for _, c := range chosen {
		names = append(names, c.iface.Name+"="+strings.Join(c.addrs(), ","))
	}
	a.log.Info("mDNS announcing", "instance", name, "host", a.host, "port", a.cfg.Port, "ifaces", strings.Join(names, " "))
	return nil
}

func (a *Announcer) register(name string, chosen []lanIface, nifs []net.Interface) (*zeroconf.Server, error) {
	var ips []string
	if fixedAddrs {
		for _, c := range chosen {
			ips = append(ips, c.addrs()...)
		}
	}
	s, err := zeroconf.RegisterProxy(escapeLabel(name), serviceType, domain, a.cfg.Port, a.host, ips, txtRecords(a.cfg), nifs)
	if err != nil {
		return nil, fmt.Errorf("register mDNS instance %q on %s: %w", name, ifaceNames(nifs), err)
	}
	return s, nil // its TTL for PTR, SRV and TXT is ttlService already; setting it now would race its prober
}

// teardown sends the goodbye and closes everything; run calls it on exit.
func (a *Announcer) teardown(why string) {
	if a.server != nil {
		a.server.Shutdown() // goodbye: PTR, SRV and TXT with TTL 0 on every interface
		a.server = nil
		a.log.Info("mDNS goodbye sent", "reason", why, "instance", a.name)
	}
	if a.conn != nil {
		a.conn.Close()
		a.mu.Lock()
		a.conn = nil
		a.mu.Unlock()
	}
	a.setKey = ""
	a.ifaces = nil
	a.mu.Lock()
	a.byIndex = map[int]lanIface{}
	a.status.Interfaces = []InterfaceStatus{}
	if a.closed {
		a.setState("off", "")
	}
	a.mu.Unlock()
}

// pickName returns the first of "name", "name (2)", ... that no other host
// is known to announce.
func (a *Announcer) pickName() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for n := 1; ; n++ {
		c := candidateName(a.cfg.Instance, n)
		taken := false
		for _, exp := range a.peers[strings.ToLower(c)] {
			if exp.After(now) {
				taken = true
			}
		}
		if !taken {
			return c
		}
	}
}

func (a *Announcer) expirePeers() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for inst, targets := range a.peers {
		for t, exp := range targets {
			if !exp.After(now) {
				delete(targets, t)
			}
		}
		if len(targets) == 0 {
			delete(a.peers, inst)
		}
	}
}

// queryPeers asks the LAN who announces our service type.
func (a *Announcer) queryPeers() {
	q := new(dns.Msg)
	q.SetQuestion(serviceType+"."+domain, dns.TypePTR)
	q.RecursionDesired = false
	q.Id = 0
	if err := a.conn.multicast(q, 0); err != nil {
		a.log.Warn("mDNS query for other instances failed", "err", err)
	}
}

// announce sends an unsolicited response on one interface with the
// interface's current addresses. Every record has the cache-flush bit but
// the shared PTR, so registers drop the addresses they had for our host.
func (a *Announcer) announce(ifIndex int) {
	if a.conn == nil {
		return
	}
	a.mu.Lock()
	li, ok := a.byIndex[ifIndex]
	name := a.name
	a.mu.Unlock()
	if !ok || name == "" {
		return
	}
	m := new(dns.Msg)
	m.Response = true
	m.Authoritative = true
	m.Answer = append(a.serviceRecords(name, ttlService, true), hostRecords(a.host, li, ttlHost, true)...)
	if err := a.conn.multicast(m, ifIndex); err != nil {
		a.log.Warn("mDNS announcement failed", "iface", li.iface.Name, "err", err)
		return
	}
	a.mu.Lock()
	a.status.AnnouncedAt = time.Now()
	a.mu.Unlock()
}

func (a *Announcer) serviceRecords(name string, ttl uint32, flush bool) []dns.RR {
	class := uint16(dns.ClassINET)
	if flush {
		class |= 1 << 15
	}
	inst := escapeLabel(name) + "." + serviceType + "." + domain
	return []dns.RR{
		&dns.PTR{Hdr: dns.RR_Header{Name: serviceType + "." + domain, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: inst},
		&dns.SRV{Hdr: dns.RR_Header{Name: inst, Rrtype: dns.TypeSRV, Class: class, Ttl: ttl}, Port: uint16(a.cfg.Port), Target: a.host},
		&dns.TXT{Hdr: dns.RR_Header{Name: inst, Rrtype: dns.TypeTXT, Class: class, Ttl: ttl}, Txt: txtRecords(a.cfg)},
	}
}

func hostRecords(host string, li lanIface, ttl uint32, flush bool) []dns.RR {
	class := uint16(dns.ClassINET)
	if flush {
		class |= 1 << 15
	}
	var rrs []dns.RR
	for _, ip := range li.v4 {
		rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeA, Class: class, Ttl: ttl}, A: ip})
	}
	for _, ip := range li.v6 {
		rrs = append(rrs, &dns.AAAA{Hdr: dns.RR_Header{Name: host, Rrtype: dns.TypeAAAA, Class: class, Ttl: ttl}, AAAA: ip})
	}
	return rrs
}

// onPacket runs on the socket's reader goroutines.
func (a *Announcer) onPacket(m *dns.Msg, ifIndex int, from net.Addr) {
	a.mu.Lock()
	name := strings.ToLower(a.name)
	li, onLAN := a.byIndex[ifIndex]
	a.mu.Unlock()
	if !perInterfaceControl {
		onLAN = false // cannot tell the interface; the library answers with fixed addresses
	}
	ourHost := strings.ToLower(a.host)
	if m.Response {
		for _, rr := range append(append([]dns.RR{}, m.Answer...), m.Extra...) {
			srv, ok := rr.(*dns.SRV)
			if !ok {
				continue
			}
			inst, ok := splitInstance(srv.Hdr.Name)
			target := strings.ToLower(srv.Target)
			if !ok || target == ourHost {
				continue
			}
			key := strings.ToLower(inst)
			a.mu.Lock()
			if srv.Hdr.Ttl == 0 {
				delete(a.peers[key], target)
			} else {
				if a.peers[key] == nil {
					a.peers[key] = map[string]time.Time{}
				}
				if _, known := a.peers[key][target]; !known {
					select { // news for the duplicate watch
					case a.peerNews <- struct{}{}:
					default:
					}
				}
				a.peers[key][target] = time.Now().Add(time.Duration(srv.Hdr.Ttl) * time.Second)
			}
			a.mu.Unlock()
			if key != name || name == "" {
				continue
			}
			kind := evConflict
			if srv.Hdr.Ttl == 0 {
				kind = evGoodbye
			}
			a.post(event{kind: kind, foreign: target, ifIndex: ifIndex})
		}
		return
	}
	// A probe (query with records in the authority section) for our name.
	for _, rr := range m.Ns {
		if srv, ok := rr.(*dns.SRV); ok {
			if inst, ok := splitInstance(srv.Hdr.Name); ok && strings.ToLower(inst) == name && strings.ToLower(srv.Target) != ourHost {
				a.post(event{kind: evProbe, foreign: strings.ToLower(srv.Target), ifIndex: ifIndex})
			}
		}
	}
	// Queries for our host name, which the library leaves unanswered.
	if !onLAN {
		return
	}
	for _, q := range m.Question {
		if !strings.EqualFold(q.Name, a.host) {
			continue
		}
		var rrs []dns.RR
		for _, rr := range hostRecords(a.host, li, ttlHost, true) {
			t := rr.Header().Rrtype
			if q.Qtype == dns.TypeANY || q.Qtype == t {
				rrs = append(rrs, rr)
			}
		}
		if len(rrs) == 0 {
			continue
		}
		resp := new(dns.Msg)
		resp.Response = true
		resp.Authoritative = true
		resp.Answer = rrs
		a.mu.Lock()
		conn := a.conn
		a.mu.Unlock()
		if conn == nil {
			return
		}
		if q.Qclass&(1<<15) != 0 || !isMDNSPort(from) {
			resp.Id = m.Id
			if !isMDNSPort(from) {
				resp.Question = []dns.Question{q} // legacy unicast (RFC 6762 §6.7)
			}
			_ = conn.unicast(resp, ifIndex, from)
		} else {
			_ = conn.multicast(resp, ifIndex)
		}
	}
}

func isMDNSPort(addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	return ok && ua.Port == 5353
}

func (a *Announcer) post(ev event) {
	select {
	case a.events <- ev:
	default: // a burst; the next packet will tell again
	}
}

// handleEvent resolves name conflicts: of two hosts announcing one instance
// name, the one whose host name sorts higher renames itself; the other
// re-asserts its records, also after the renaming one's goodbye, which
// removes the shared PTR record from registers' caches.
func (a *Announcer) handleEvent(ctx context.Context, ev event) {
	if a.server == nil {
		return
	}
	switch ev.kind {
	case evGoodbye, evProbe:
		a.announceAll()
	case evConflict:
		if strings.ToLower(a.host) > ev.foreign {
			a.mu.Lock()
			old := a.name
			a.mu.Unlock()
			a.log.Warn("another host announces our instance name; renaming", "instance", old, "other_host", ev.foreign)
			chosen := a.ifaces
			if err := a.publish(ctx, chosen, false); err != nil {
				a.fail(err.Error())
			}
			return
		}
		if time.Since(a.lastAssert) >= time.Second {
			a.lastAssert = time.Now()
			a.announceAll()
		}
	}
}

func (a *Announcer) announceAll() {
	for _, c := range a.ifaces {
		a.announce(c.iface.Index)
	}
}
