package api

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopbridge/shopbridge"
)

// The rules that keep strangers on the shop LAN out (docs/security.md):
// registers are not browsers (crossSite), operator endpoints answer only
// requests that name this machine (hostCheck), and one limiter counts every
// wrong token however it was presented (tokenLimiter).

// coded is an error with its own status and Evotor code, for the refusals
// of this file, which share their error kind with others (a 403 for a
// browser is not the 403 for an address outside --allow).
type coded struct {
	status  int
	code    int
	subject string
	msg     string
	retry   int // seconds, for Retry-After; 0 none
}

func (c *coded) Error() string { return c.subject + ": " + c.msg }

// logText and tooLong are shopbridge.LogText and TooLong, by their
// short names.
func logText(s string) string { return shopbridge.LogText(s) }

func tooLong(subject string, n int) error { return shopbridge.TooLong(subject, n) }

// crossSite reports why a terminal request looks like a web page's, or "".
// Registers (and Evotor's proxy in front of them) send none of these
// headers; browsers send them on every request a page makes, and no page
// can remove them. A URL typed into the address bar (Sec-Fetch-Site: none,
// navigate, no Origin, no Referer) is a person on this machine or LAN
// looking, and passes.
func crossSite(r *http.Request) string {
	h := r.Header
	if v := header(h, "Sec-Fetch-Site"); v != "" && v != "none" {
		return "Sec-Fetch-Site: " + v
	}
	if v := header(h, "Sec-Fetch-Mode"); v != "" && v != "navigate" {
		return "Sec-Fetch-Mode: " + v
	}
	if header(h, "Origin") != "" {
		return "Origin"
	}
	if header(h, "Referer") != "" {
		return "Referer"
	}
	if header(h, "Access-Control-Request-Method") != "" {
		return "a CORS preflight"
	}
	return ""
}

// browserRefused is the answer to a terminal request crossSite caught.
func browserRefused(why string) error {
	return &coded{status: http.StatusForbidden, code: CodeBrowser, subject: "origin",
		msg: "a request from a web page is refused (" + why + "): the terminal API is for cash registers"}
}

// hostCheck knows the names and addresses that are this machine, for the
// Host header of operator requests: a page of another site whose DNS name
// an attacker points at this PC (DNS rebinding) reaches it with that
// other name, whatever address it comes from.
type hostCheck struct {
	names map[string]bool

	mu      sync.Mutex
	addrs   map[netip.Addr]bool // the interfaces' addresses, refreshed at most every second
	addrsAt time.Time
}

func newHostCheck(extra []string) *hostCheck {
	h := &hostCheck{names: map[string]bool{"localhost": true}}
	add := func(n string) {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n != "" {
			h.names[n] = true
		}
	}
	if hn, err := os.Hostname(); err == nil && hn != "" {
		add(hn)
		short, _, _ := strings.Cut(hn, ".")
		add(short)
		add(short + ".local")
	}
	for _, n := range extra {
		add(n)
	}
	return h
}

// ok reports whether host (a Host header, with or without port) names this
// machine; local is the address the request arrived at.
func (h *hostCheck) ok(host string, local netip.Addr) bool {
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // fe80::1%eth0
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		return ip.IsLoopback() || ip == local.WithZone("") || h.own(ip)
	}
	return h.names[host] || strings.HasSuffix(host, ".localhost")
}

// own reports whether ip is one of this machine's interface addresses.
func (h *hostCheck) own(ip netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.addrs[ip] {
		return true
	}
	if time.Since(h.addrsAt) < time.Second {
		return false
	}
	h.addrsAt = time.Now()
	h.addrs = map[netip.Addr]bool{}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				h.addrs[p.Addr().Unmap().WithZone("")] = true
			}
		}
	}
	return h.addrs[ip]
}

func localAddr(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

// hostRefused is the answer to an operator request for another host name.
func hostRefused(host string) error {
	return shopbridge.Errorf(shopbridge.EFORBIDDEN, "Host",
		"host %q is not this machine: open the console at http://127.0.0.1:PORT/admin/, this PC's address or name (or add the name with --admin-hosts)", logText(host))
}

// The token limiter. Every way a token is presented — the admin Bearer
// header, the console's login form, the terminal token, /metrics — goes
// through one tokenLimiter, keyed by the client's network (an IPv4 address,
// an IPv6 /64: one machine gets a whole /64). Each network may fail
// limitFails times per limitWindow, then it is locked for the rest of that
// window. All networks together may fail globalBurst times, refilled at one
// per globalEvery: beyond that (many addresses guessing at once) every
// network is locked. An address (exactly that address, not its network)
// that presented a right token within goodFor is exempt from both locks. The map of networks is bounded; a network not in it (the map is
// full of live entries) is still counted against the global budget, and no
// entry is dropped before its window ends, so a flood of addresses cannot
// give a locked one fresh tries.
const (
	limitFails   = 5
	limitWindow  = time.Minute
	maxNets      = 4096
	globalBurst  = 30
	globalEvery  = 2 * time.Second
	goodFor      = 12 * time.Hour
	maxGood      = 512
	lockLogEvery = time.Minute
)

type tokenLimiter struct {
	now func() time.Time

	mu       sync.Mutex
	nets     map[netip.Prefix]*netFailures
	good     map[netip.Addr]time.Time // addresses that presented a right token, and when
	budget   float64                  // global failures left
	budgetAt time.Time
	loggedAt time.Time // last "global lock" log line
	onLock   func(kind string, n netip.Prefix)
}

type netFailures struct {
	n     int
	first time.Time
}

func newTokenLimiter(now func() time.Time) *tokenLimiter {
	return &tokenLimiter{now: now, nets: map[netip.Prefix]*netFailures{}, good: map[netip.Addr]time.Time{},
		budget: globalBurst, budgetAt: now()}
}

// network is the limiter's key for a client address.
func network(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// refill brings the global budget up to now; mu is held.
func (l *tokenLimiter) refill(now time.Time) {
	if d := now.Sub(l.budgetAt); d > 0 {
		l.budget = min(globalBurst, l.budget+float64(d)/float64(globalEvery))
	}
	l.budgetAt = now
}

// locked tells whether a may not present a token now, and for how long
// (rounded up to a second) if so. It is asked before the token is compared,
// so a locked client learns nothing from its guesses. An address that
// presented a right token within goodFor is never locked: whoever sends
// from it is, almost always, the machine that holds the token (a
// Prometheus whose second job has a stale token, the owner's laptop).
func (l *tokenLimiter) locked(a netip.Addr) (bool, time.Duration) {
	a = a.Unmap().WithZone("")
	k := network(a)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	if at, ok := l.good[a]; ok && now.Sub(at) < goodFor {
		return false, 0
	}
	if f := l.nets[k]; f != nil {
		if end := f.first.Add(limitWindow); now.Before(end) {
			if f.n >= limitFails {
				return true, end.Sub(now)
			}
		} else {
			delete(l.nets, k)
		}
	}
	if l.budget >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - l.budget) * float64(globalEvery))
}

// failed counts a wrong token from a.
func (l *tokenLimiter) failed(a netip.Addr) {
	k := network(a)
	now := l.now()
	l.mu.Lock()
	l.refill(now)
	l.budget = max(0, l.budget-1)
	globalLock := l.budget < 1
	f := l.nets[k]
	if f == nil || !now.Before(f.first.Add(limitWindow)) {
		if f == nil && len(l.nets) >= maxNets {
			for k, old := range l.nets {
				if !now.Before(old.first.Add(limitWindow)) {
					delete(l.nets, k)
				}
			}
		}
		f = nil
		if len(l.nets) < maxNets {
			f = &netFailures{first: now}
			l.nets[k] = f
		}
	}
	netLock := false
	if f != nil {
		f.n++
		netLock = f.n == limitFails
	}
	logGlobal := globalLock && now.Sub(l.loggedAt) >= lockLogEvery
	if logGlobal {
		l.loggedAt = now
	}
	onLock := l.onLock
	l.mu.Unlock()
	if onLock != nil && netLock {
		onLock("network", k)
	}
	if onLock != nil && logGlobal {
		onLock("global", k)
	}
}

// succeeded remembers that a presented a right token: neither its
// network's lock nor a global one shuts that address out.
func (l *tokenLimiter) succeeded(a netip.Addr) {
	a = a.Unmap().WithZone("")
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.good[a]; !ok && len(l.good) >= maxGood {
		var oldest netip.Addr
		var first time.Time
		for g, at := range l.good {
			if first.IsZero() || at.Before(first) {
				oldest, first = g, at
			}
		}
		delete(l.good, oldest)
	}
	l.good[a] = now
}

// lockedOut is the answer to a client the limiter holds back.
func lockedOut(wait time.Duration) error {
	s := int((wait + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return &coded{status: http.StatusTooManyRequests, code: CodeLocked, subject: "Authorization", retry: s,
		msg: "too many wrong tokens from this network or the whole LAN: try again in " + strconv.Itoa(s) + " s"}
}
