package api_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/storetest"
)

const testFingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"

// viaTLS calls h as a client at addr would, over HTTPS when tlsOn.
func viaTLS(h http.Handler, addr, host string, tlsOn bool, method, target, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr, req.Host = addr, host
	if hp, err := netip.ParseAddrPort(host); err == nil {
		// The request arrived at that address of this PC.
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(hp)))
	}
	if !tlsOn {
		req.TLS = nil
	} else {
		req.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestConsoleToHTTPS: with an HTTPS listener, the console from another PC
// over plain HTTP is sent there; loopback, registers and /metrics keep
// plain HTTP (issue 16.7).
func TestConsoleToHTTPS(t *testing.T) {
	const token = "adm1n-token"
	s := storetest.MustOpen(t)
	https := &shopbridge.HTTPSStatus{Addr: "[::]:8443", Port: 8443, Fingerprint: testFingerprint, Source: shopbridge.TLSSelfSigned}
	h := api.New(api.Config{Store: s, Hosts: testHosts, AdminToken: token, Logger: quietLogger(), HTTPS: https})
	const lan = "192.168.1.20:40000"

	for _, tt := range []struct {
		name, addr, host, method, target string
		tls                              bool
		header                           []string
		status                           int
		location                         string // for a redirect
	}{
		{"console page", lan, "shop-pc:8480", "GET", "/admin/", false, nil, 308, "https://shop-pc:8443/admin/"},
		{"path and query kept", lan, "shop-pc:8480", "GET", "/admin/journal?kind=RECEIPT&q=%D0%B0", false, nil, 308,
			"https://shop-pc:8443/admin/journal?kind=RECEIPT&q=%D0%B0"},
		{"HEAD", lan, "shop-pc:8480", "HEAD", "/admin/login", false, nil, 308, "https://shop-pc:8443/admin/login"},
		{"a program's Bearer GET", lan, "shop-pc:8480", "GET", "/admin/api/status", false, []string{"Authorization", "Bearer " + token}, 308,
			"https://shop-pc:8443/admin/api/status"},
		{"by address", lan, "192.168.1.5:8480", "GET", "/admin", false, nil, 308, "https://192.168.1.5:8443/admin"},
		{"IPv6 address", "[fe80::20]:40000", "[fe80::5]:8480", "GET", "/admin/", false, nil, 308, "https://[fe80::5]:8443/admin/"},
		{"Host without port", lan, "shop-pc", "GET", "/admin/", false, nil, 308, "https://shop-pc:8443/admin/"},
		// Not redirected.
		{"over HTTPS", lan, "shop-pc:8443", "GET", "/admin/api/status", true, []string{"Authorization", "Bearer " + token}, 200, ""},
		{"loopback", "127.0.0.1:40000", "127.0.0.1:8480", "GET", "/admin/api/status", false, nil, 200, ""},
		{"a register", lan, "shop-pc:8480", "GET", "/api/v2/list", false, nil, 200, ""},
		{"metrics", lan, "shop-pc:8480", "GET", "/metrics", false, []string{"Authorization", "Bearer " + token}, 200, ""},
		{"another site's name: refused, not redirected", lan, "rebind.evil.example:8480", "GET", "/admin/", false, nil, 403, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := viaTLS(h, tt.addr, tt.host, tt.tls, tt.method, tt.target, "", tt.header...)
			if rec.Code != tt.status {
				t.Fatalf("%s %s from %s: %d, want %d (%s)", tt.method, tt.target, tt.addr, rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
		})
	}

	// Other methods carried their token or cookie in clear already: refused,
	// naming the HTTPS address, and nothing done.
	t.Run("login over plain HTTP refused", func(t *testing.T) {
		rec := viaTLS(h, lan, "shop-pc:8480", false, "POST", "/admin/login", "csrf=x&token="+token)
		wantError(t, "plain POST from the LAN", answerOf(rec), 403, api.CodeForbidden, "scheme")
		if !strings.Contains(rec.Body.String(), "https://shop-pc:8443/admin/login") || len(rec.Result().Cookies()) != 0 {
			t.Errorf("refusal %s, cookies %v", rec.Body, rec.Result().Cookies())
		}
		page := viaTLS(h, lan, "shop-pc:8480", false, "POST", "/admin/logout", "", "Accept", "text/html", "Sec-Fetch-Mode", "navigate")
		if page.Code != 403 || !strings.Contains(page.Body.String(), "https://shop-pc:8443/admin/") || !strings.Contains(page.Body.String(), testFingerprint) {
			t.Errorf("a browser's refusal page: %d\n%s", page.Code, page.Body)
		}
	})

	// Over HTTPS the login works and its cookie is Secure.
	t.Run("login over HTTPS", func(t *testing.T) {
		form := viaTLS(h, lan, "shop-pc:8443", true, "GET", "/admin/login", "")
		m := regexpCSRF.FindStringSubmatch(form.Body.String())
		if form.Code != 200 || m == nil {
			t.Fatalf("login form over HTTPS: %d", form.Code)
		}
		rec := viaTLS(h, lan, "shop-pc:8443", true, "POST", "/admin/login", "csrf="+url.QueryEscape(m[1])+"&token="+token,
			"Origin", "https://shop-pc:8443", "Sec-Fetch-Site", "same-origin")
		var session *http.Cookie
		for _, c := range rec.Result().Cookies() {
			if c.Name == "shopbridge_session" {
				session = c
			}
		}
		if rec.Code != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
			t.Fatalf("login over HTTPS: %d, cookie %+v", rec.Code, session)
		}
		// The session serves over HTTPS.
		page := viaTLS(h, lan, "shop-pc:8443", true, "GET", "/admin/", "", "Cookie", session.Name+"="+session.Value)
		if page.Code != 200 || !strings.Contains(page.Body.String(), testFingerprint) {
			t.Errorf("overview over HTTPS with the session: %d, fingerprint shown: %v", page.Code, strings.Contains(page.Body.String(), testFingerprint))
		}
		help := viaTLS(h, lan, "shop-pc:8443", true, "GET", "/admin/help?lang=en", "", "Cookie", session.Name+"="+session.Value)
		if help.Code != 200 || !strings.Contains(help.Body.String(), testFingerprint) || !strings.Contains(help.Body.String(), "https://shop-pc:8443/admin/") {
			t.Errorf("help over HTTPS: %d\n%.2000s", help.Code, help.Body)
		}
	})

	// Without an HTTPS listener (https-listen none) the LAN keeps plain HTTP.
	t.Run("HTTPS off", func(t *testing.T) {
		off := api.New(api.Config{Store: s, Hosts: testHosts, AdminToken: token, Logger: quietLogger()})
		rec := viaTLS(off, lan, "shop-pc:8480", false, "GET", "/admin/api/status", "", "Authorization", "Bearer "+token)
		if rec.Code != 200 {
			t.Errorf("status from the LAN without HTTPS: %d %s", rec.Code, rec.Body)
		}
		help := viaTLS(off, "127.0.0.1:1", "127.0.0.1:8480", false, "GET", "/admin/help?lang=en", "")
		if !strings.Contains(help.Body.String(), "https-listen none") {
			t.Errorf("the help page does not say HTTPS is off:\n%.2000s", help.Body)
		}
	})
}

var regexpCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
