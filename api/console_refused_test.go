package api_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/storetest"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// TestRefusedBrowserGetsPage: a browser (Accept: text/html) that --allow
// or the admin rule turns away gets a short page in the console's language
// saying why and what to change; a program gets the Evotor JSON body, and
// the terminal protocol keeps it for everyone.
func TestRefusedBrowserGetsPage(t *testing.T) {
	s := storetest.MustOpen(t)
	allow := api.New(api.Config{Hosts: testHosts, Store: s, Logger: quietLogger(), Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	from := func(h http.Handler, addr, target string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", target, nil)
		req.RemoteAddr = addr
		req.Host = "shop-pc:8480"
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	cases := []struct {
		name    string
		h       http.Handler
		addr    string
		target  string
		lang    string
		status  int
		want    []string // in the page
		program int      // the Evotor code a program gets
		subject string
	}{
		{"outside --allow, Russian", allow, "192.168.1.20:5000", "/admin/", "ru", 403,
			[]string{`lang="ru"`, "192.168.1.20", "10.0.0.0/8", "allow", "перезапустите"}, api.CodeForbidden, "client"},
		{"outside --allow, English", allow, "192.168.1.20:5000", "/admin/journal", "en", 403,
			[]string{`lang="en"`, "192.168.1.20", "10.0.0.0/8", "restart shopbridge"}, api.CodeForbidden, "client"},
		{"outside --allow, an API path a browser opened", allow, "192.168.1.20:5000", "/admin/api/status", "en", 403,
			[]string{"192.168.1.20", "10.0.0.0/8"}, api.CodeForbidden, "client"},
		{"the admin rule: LAN without an admin token", api.New(api.Config{Hosts: testHosts, Store: s, Logger: quietLogger()}), "192.168.1.20:5000", "/admin/api/status", "ru", 403,
			[]string{`lang="ru"`, "admin-token"}, api.CodeForbidden, "client"},
		{"no such console page", allow, "10.1.1.1:5000", "/admin/nothing", "en", 404,
			[]string{"/admin/nothing", `href="/admin/"`}, api.CodeNotFound, "/admin/nothing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := from(c.h, c.addr, c.target, "Accept", browserAccept, "Accept-Language", c.lang)
			body := rec.Body.String()
			if rec.Code != c.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") || !strings.Contains(body, `data-testid="refused"`) {
				t.Fatalf("browser: %d %s\n%s", rec.Code, rec.Header().Get("Content-Type"), body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("the page lacks %q:\n%s", w, body)
				}
			}
			if rec.Header().Get("Content-Security-Policy") != api.ConsoleCSP {
				t.Errorf("the page lacks the console's CSP")
			}
			prog := from(c.h, c.addr, c.target)
			wantError(t, "program", answerOf(prog), c.status, c.program, c.subject)
		})
	}
	// The terminal protocol answers JSON whatever the Accept.
	rec := from(allow, "192.168.1.20:5000", "/api/v2/list", "Accept", browserAccept)
	if rec.Code != 403 || !strings.Contains(rec.Header().Get("Content-Type"), "json") {
		t.Errorf("/api/v2/list from outside --allow with a browser's Accept: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
}
