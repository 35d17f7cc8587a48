package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shopbridge/shopbridge"
)

// Who may use /admin/: the rule of §4 (loopback clients, others with the
// admin token) with a browser's ways to prove it. A program sends the token
// as Authorization: Bearer; a browser logs in once with a form and keeps an
// HttpOnly, SameSite=Strict session cookie. State-changing requests from a
// browser also need the page's CSRF token and must come from the page's
// own origin, so another site open in the same browser cannot retry, log
// out or otherwise act through it.

const (
	sessionCookie = "shopbridge_session"
	// SessionTTL is how long a console login lasts.
	SessionTTL  = 12 * time.Hour
	maxSessions = 256 // the oldest go first beyond this
)

// How a request proved it may use the operator endpoints.
const (
	viaLoopback = "loopback"
	viaBearer   = "bearer"
	viaSession  = "session"
)

type access struct {
	via     string
	session [32]byte // the session's id hash, viaSession only
	csrf    string   // the CSRF token state-changing requests must carry
}

// consoleAuth keeps the console's sessions and secrets, in memory only: a
// restart logs everyone out, which is what a shop PC's reboot should do.
type consoleAuth struct {
	token  string   // --admin-token; "" none
	secret [32]byte // keys the CSRF tokens; new at every start
	hosts  map[string]bool
	now    func() time.Time

	// limiter counts wrong tokens, the login form's and the Bearer
	// header's, and the terminal token's (lan.go).
	limiter *tokenLimiter

	mu       sync.Mutex
	sessions map[[32]byte]time.Time // sha256 of the cookie value -> expiry
}

func newConsoleAuth(token string, now func() time.Time) *consoleAuth {
	if now == nil {
		now = time.Now
	}
	a := &consoleAuth{token: token, now: now, sessions: map[[32]byte]time.Time{},
		limiter: newTokenLimiter(now), hosts: map[string]bool{"localhost": true}}
	if _, err := rand.Read(a.secret[:]); err != nil {
		panic("console: no randomness for the CSRF secret: " + err.Error())
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		h = strings.ToLower(h)
		a.hosts[h], a.hosts[h+".local"] = true, true
		if short, _, ok := strings.Cut(h, "."); ok {
			a.hosts[short] = true
		}
	}
	return a
}

// csrfToken is the CSRF token of one identity: an HMAC under the daemon's
// secret, so nothing needs storing and no other origin can compute it.
func (a *consoleAuth) csrfToken(ident string) string {
	m := hmac.New(sha256.New, a.secret[:])
	m.Write([]byte("csrf\x00" + ident))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *consoleAuth) sessionCSRF(id [32]byte) string {
	return a.csrfToken("session\x00" + string(id[:]))
}

// browser reports whether a request comes from a web browser: browsers send
// Origin on every POST and Sec-Fetch-* on every request, programs such as
// the shopbridge CLI send neither (nor cookies).
func browser(r *http.Request) bool {
	h := r.Header
	return h.Get("Origin") != "" || h.Get("Sec-Fetch-Site") != "" || h.Get("Sec-Fetch-Mode") != "" ||
		h.Get("Cookie") != "" || h.Get("Referer") != ""
}

// localHost reports whether a Host header names this machine over
// loopback. A browser let in only for being on loopback must show one: a
// page of another site whose name an attacker points at 127.0.0.1 (DNS
// rebinding) carries that other name.
func (a *consoleAuth) localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	return a.hosts[host] || strings.HasSuffix(host, ".localhost")
}

// authorize tells how r may use the operator endpoints, or why it may not.
func (a *consoleAuth) authorize(r *http.Request) (access, error) {
	if a.token != "" {
		if b := bearer(r); b != "" {
			// On loopback the token is not needed, so not guessed.
			addr := clientAddr(r)
			limited := !addr.IsLoopback()
			if locked, wait := a.limiter.locked(addr); limited && locked {
				return access{}, lockedOut(wait)
			}
			if tokenOK(b, a.token) {
				if limited {
					a.limiter.succeeded(addr)
				}
				return access{via: viaBearer}, nil
			}
			if limited {
				a.limiter.failed(addr)
			}
		}
		if id, ok := a.session(r); ok {
			return access{via: viaSession, session: id, csrf: a.sessionCSRF(id)}, nil
		}
	}
	if clientAddr(r).IsLoopback() {
		if browser(r) && !a.localHost(r.Host) {
			return access{}, shopbridge.Errorf(shopbridge.EFORBIDDEN, "Host",
				"host %q is not this machine: open the console at http://127.0.0.1:PORT/admin/", r.Host)
		}
		return access{via: viaLoopback, csrf: a.csrfToken("loopback")}, nil
	}
	if a.token == "" {
		return access{}, shopbridge.Errorf(shopbridge.EFORBIDDEN, "client", "operator endpoints answer loopback only (set --admin-token to allow others)")
	}
	return access{}, shopbridge.Errorf(shopbridge.EUNAUTHORIZED, "Authorization", "missing or wrong admin token")
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin refuses a request another site's page sent: Sec-Fetch-Site
// other than same-origin or none (typed, bookmarked), or an Origin that is
// not this request's own.
func sameOrigin(r *http.Request) error {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" {
		return shopbridge.Errorf(shopbridge.EFORBIDDEN, "origin", "a %s request is refused: operator actions come from the console's own pages", sfs)
	}
	// "null" is what a browser sends for a form post under a strict
	// referrer policy (a user's setting can impose one); Sec-Fetch-Site,
	// which no page can forge, then tells where it came from.
	if o := r.Header.Get("Origin"); o != "" && (o != "null" || r.Header.Get("Sec-Fetch-Site") != "same-origin") {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme != scheme || !strings.EqualFold(u.Host, r.Host) || u.Path != "" {
			return shopbridge.Errorf(shopbridge.EFORBIDDEN, "origin", "a request from origin %q is refused: operator actions come from the console's own pages", o)
		}
	}
	return nil
}

// checkUnsafe guards a state-changing request: a program with the admin
// token, or a program on loopback that is no browser, passes; a browser
// must be on the page's own origin and send the page's CSRF token (the
// X-CSRF-Token header, or formToken for the plain HTML forms).
func (a *consoleAuth) checkUnsafe(r *http.Request, acc access, formToken string) error {
	if acc.via == viaBearer {
		return nil
	}
	if err := sameOrigin(r); err != nil {
		return err
	}
	if acc.via == viaLoopback && !browser(r) {
		return nil // CSRF is an attack through a browser; this is a program on this machine
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = formToken
	}
	if got == "" || !tokenOK(got, acc.csrf) {
		return shopbridge.Errorf(shopbridge.EFORBIDDEN, "csrf", "missing or wrong CSRF token (reload the console page)")
	}
	return nil
}

// allow is the gate of every operator endpoint.
func (a *consoleAuth) allow(r *http.Request) (access, error) {
	acc, err := a.authorize(r)
	if err == nil && !safeMethod(r.Method) {
		err = a.checkUnsafe(r, acc, "")
	}
	return acc, err
}

func sessionHash(v string) [32]byte { return sha256.Sum256([]byte(v)) }

// session finds the request's live session.
func (a *consoleAuth) session(r *http.Request) ([32]byte, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return [32]byte{}, false
	}
	id := sessionHash(c.Value)
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.sessions[id]
	if !ok {
		return id, false
	}
	if !a.now().Before(exp) {
		delete(a.sessions, id)
		return id, false
	}
	return id, true
}

// newSession starts a session and returns the cookie value (32 random
// bytes); only its hash is kept.
func (a *consoleAuth) newSession() (string, [32]byte) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("console: no randomness for a session: " + err.Error())
	}
	v := base64.RawURLEncoding.EncodeToString(b[:])
	id := sessionHash(v)
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, exp := range a.sessions {
		if !now.Before(exp) {
			delete(a.sessions, k)
		}
	}
	for len(a.sessions) >= maxSessions {
		var oldest [32]byte
		var first time.Time
		for k, exp := range a.sessions {
			if first.IsZero() || exp.Before(first) {
				oldest, first = k, exp
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[id] = now.Add(SessionTTL)
	return v, id
}

func (a *consoleAuth) endSession(id [32]byte) {
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
}

// locked reports whether addr may not try a token now (the limiter's
// rule, lan.go).
func (a *consoleAuth) locked(addr string) bool {
	ip, _ := netip.ParseAddr(addr)
	locked, _ := a.limiter.locked(ip)
	return locked
}

func (a *consoleAuth) failed(addr string) {
	ip, _ := netip.ParseAddr(addr)
	a.limiter.failed(ip)
}

func (a *consoleAuth) succeeded(addr string) {
	ip, _ := netip.ParseAddr(addr)
	a.limiter.succeeded(ip)
}
