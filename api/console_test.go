package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"github.com/shopbridge/shopbridge/storage"
)

var consolePages = []string{"/admin/", "/admin/journal", "/admin/bills"}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// pageCSRF is the CSRF token a console page hands its script.
func pageCSRF(t *testing.T, body []byte) string {
	t.Helper()
	m := csrfMeta.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf-token meta in the page:\n%s", body)
	}
	return string(m[1])
}

func TestConsolePages(t *testing.T) {
	ts := newServer(t, api.Config{})
	for _, p := range consolePages {
		for _, c := range []struct {
			name     string
			header   []string
			lang     string
			navWords string
		}{
			{"default", nil, "ru", "Журнал"},
			{"English browser", []string{"Accept-Language", "en-US,en;q=0.9"}, "en", "Journal"},
			{"Russian browser", []string{"Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8"}, "ru", "Журнал"},
			{"cookie", []string{"Cookie", "shopbridge_lang=en"}, "en", "Journal"},
		} {
			a := ts.get(t, p, c.header...)
			if a.status != 200 {
				t.Fatalf("%s (%s) = %d %s", p, c.name, a.status, a.body)
			}
			body := string(a.body)
			if !strings.Contains(body, `<html lang="`+c.lang+`">`) || !strings.Contains(body, ">"+c.navWords+"</a>") {
				t.Errorf("%s (%s) is not in %s", p, c.name, c.lang)
			}
			if strings.Contains(body, "??") {
				t.Errorf("%s (%s) names strings the table lacks: %s", p, c.name, regexp.MustCompile(`\?\?[a-z_.]+`).FindAllString(body, -1))
			}
			if got := a.header.Get("Content-Security-Policy"); got != api.ConsoleCSP {
				t.Errorf("%s CSP = %q", p, got)
			}
			for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
				"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "Content-Type": "text/html; charset=utf-8"} {
				if got := a.header.Get(k); got != want {
					t.Errorf("%s %s = %q, want %q", p, k, got, want)
				}
			}
			// The CSP forbids inline script and style: the pages must not need them.
			if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|<script>|\son[a-z]+=|\sstyle=|javascript:`).MatchString(body) {
				t.Errorf("%s has inline script or style", p)
			}
			pageCSRF(t, a.body)
		}
	}
	// The switch sets the cookie.
	a := ts.get(t, "/admin/journal?lang=en&kind=BILL")
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == "shopbridge_lang" {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != "en" || cookie.Path != "/admin" || cookie.SameSite != http.SameSiteStrictMode {
		t.Errorf("?lang=en set cookie %+v", cookie)
	}
	if !strings.Contains(string(a.body), `<option value="BILL" selected>`) {
		t.Errorf("the journal's kind filter is not prefilled from the URL")
	}
	if a := ts.get(t, "/admin"); a.status != 200 || !strings.Contains(string(a.body), `data-page="overview"`) {
		t.Errorf("/admin does not lead to the overview: %d", a.status)
	}
}

func TestConsoleAssets(t *testing.T) {
	ts := newServer(t, api.Config{})
	page := ts.get(t, "/admin/")
	refs := regexp.MustCompile(`(?:href|src)="(/admin/assets/[^"]+)"`).FindAllStringSubmatch(string(page.body), -1)
	if len(refs) != 2 {
		t.Fatalf("the overview names %d assets, want 2 (app.js, style.css)", len(refs))
	}
	for _, ref := range refs {
		path := strings.ReplaceAll(ref[1], "&amp;", "&")
		a := ts.get(t, path)
		if a.status != 200 || len(a.body) < 1000 {
			t.Fatalf("%s = %d, %d bytes", path, a.status, len(a.body))
		}
		ctype := map[bool]string{true: "text/javascript; charset=utf-8", false: "text/css; charset=utf-8"}[strings.Contains(path, ".js")]
		if a.header.Get("Content-Type") != ctype || a.header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			a.header.Get("Content-Security-Policy") != api.ConsoleCSP {
			t.Errorf("%s headers: %v", path, a.header)
		}
		etag := a.header.Get("ETag")
		if b := ts.get(t, path, "If-None-Match", etag); b.status != 304 || len(b.body) != 0 {
			t.Errorf("%s with its ETag = %d", path, b.status)
		}
		// Without the current hash it may be kept, but must be checked.
		bare := path[:strings.Index(path, "?")]
		if b := ts.get(t, bare+"?v=old"); b.status != 200 || b.header.Get("Cache-Control") != "no-cache" || !bytes.Equal(b.body, a.body) {
			t.Errorf("%s with an old hash: %d %q", bare, b.status, b.header.Get("Cache-Control"))
		}
	}
	wantError(t, "unknown asset", ts.get(t, "/admin/assets/evil.js"), 404, api.CodeNotFound, "name")
}

// remote calls the handler as a client on the shop's LAN would.
func remote(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = "192.168.1.20:40000"
	req.Host = "shop-pc:8480"
	if method == http.MethodPost && body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func answerOf(rec *httptest.ResponseRecorder) answer {
	return answer{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func TestConsoleLogin(t *testing.T) {
	const token = "s3cret-admin-token"
	var logs bytes.Buffer
	s := storetest.MustOpen(t)
	seed(t, s)
	if _, err := s.AcceptReceipt(&shopbridge.Receipt{EventID: "ev-1", Body: []byte(`{"id":"ev-1","data":{}}`), Type: "SELL"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Park("ev-1", "HTTP 400: no"); err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Config{Hosts: testHosts, Store: s, AdminToken: token, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	t.Run("without a token set, the LAN is refused", func(t *testing.T) {
		noToken := api.New(api.Config{Hosts: testHosts, Store: s, Logger: quietLogger()})
		for _, p := range consolePages {
			rec := remote(noToken, "GET", p, "")
			if rec.Code != 403 || !strings.Contains(rec.Body.String(), "--admin-token") || rec.Header().Get("Content-Security-Policy") != api.ConsoleCSP {
				t.Errorf("%s from the LAN without a token = %d %s", p, rec.Code, rec.Body)
			}
		}
		if rec := remote(noToken, "GET", "/admin/login", ""); rec.Code != 404 || strings.Contains(rec.Body.String(), `data-testid="login-form"`) {
			t.Errorf("login form without a token = %d", rec.Code)
		}
		wantError(t, "assets without a token", answerOf(remote(noToken, "GET", "/admin/assets/app.js", "")), 403, api.CodeForbidden, "client")
	})

	var cookie *http.Cookie
	t.Run("pages lead to the login form, which takes the token from the body only", func(t *testing.T) {
		rec := remote(h, "GET", "/admin/journal?kind=BILL", "")
		if rec.Code != 303 || rec.Header().Get("Location") != "/admin/login?next=%2Fadmin%2Fjournal%3Fkind%3DBILL" {
			t.Fatalf("journal without a session = %d %v", rec.Code, rec.Header())
		}
		wantError(t, "API without a session", answerOf(remote(h, "GET", "/admin/api/overview", "")), 401, api.CodeUnauthorized, "Authorization")
		form := remote(h, "GET", "/admin/login?next=/admin/journal", "")
		if form.Code != 200 || !strings.Contains(form.Body.String(), `data-testid="login-form"`) {
			t.Fatalf("login form = %d", form.Code)
		}
		csrf := pageCSRF(t, form.Body.Bytes())
		if remote(h, "GET", "/admin/assets/style.css", "").Code != 200 {
			t.Error("the login page's stylesheet is refused")
		}

		post := func(body string, header ...string) *httptest.ResponseRecorder {
			return remote(h, "POST", "/admin/login", body, append([]string{"Origin", "http://shop-pc:8480", "Sec-Fetch-Site", "same-origin"}, header...)...)
		}
		// The token in the URL is never read.
		if rec := remote(h, "POST", "/admin/login?token="+token, "csrf="+url.QueryEscape(csrf)); rec.Code != 401 {
			t.Errorf("token in the URL = %d", rec.Code)
		}
		wrong := post("csrf=" + url.QueryEscape(csrf) + "&token=nope&next=/admin/journal")
		if wrong.Code != 401 || !strings.Contains(wrong.Body.String(), `data-testid="login-error"`) || len(wrong.Result().Cookies()) != 0 {
			t.Errorf("wrong token = %d", wrong.Code)
		}
		wantError(t, "login without the form's CSRF token", answerOf(post("token="+token)), 403, api.CodeForbidden, "csrf")
		wantError(t, "login from another site", answerOf(remote(h, "POST", "/admin/login", "csrf="+url.QueryEscape(csrf)+"&token="+token,
			"Origin", "http://evil.example")), 403, api.CodeForbidden, "origin")

		ok := post("csrf=" + url.QueryEscape(csrf) + "&token=" + url.QueryEscape(token) + "&next=/admin/journal")
		if ok.Code != 303 || ok.Header().Get("Location") != "/admin/journal" {
			t.Fatalf("right token = %d %v", ok.Code, ok.Header())
		}
		for _, c := range ok.Result().Cookies() {
			if c.Name == "shopbridge_session" {
				cookie = c
			}
		}
		if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/admin" || cookie.Secure || len(cookie.Value) < 40 {
			t.Fatalf("session cookie = %+v", cookie)
		}
		if strings.Contains(cookie.Value, token) {
			t.Error("the session cookie carries the token")
		}
		if logs := logs.String(); strings.Contains(logs, token) || !strings.Contains(logs, "console login failed") || !strings.Contains(logs, "console login ") {
			t.Errorf("log: %s", logs)
		}
	})

	t.Run("a session opens pages and the API; its CSRF token guards actions", func(t *testing.T) {
		c := "shopbridge_session=" + cookie.Value
		page := remote(h, "GET", "/admin/", "", "Cookie", c)
		if page.Code != 200 || !strings.Contains(page.Body.String(), `data-testid="logout"`) {
			t.Fatalf("overview with a session = %d", page.Code)
		}
		csrf := pageCSRF(t, page.Body.Bytes())
		for _, p := range []string{"/admin/api/overview", "/admin/api/status", "/admin/api/journal/page", "/metrics"} {
			if rec := remote(h, "GET", p, "", "Cookie", c); rec.Code != 200 {
				t.Errorf("%s with a session = %d", p, rec.Code)
			}
		}
		retry := "/admin/api/outbox/ev-1/retry"
		same := []string{"Cookie", c, "Origin", "http://shop-pc:8480", "Sec-Fetch-Site", "same-origin"}
		wantError(t, "retry without the CSRF header", answerOf(remote(h, "POST", retry, "", same...)), 403, api.CodeForbidden, "csrf")
		wantError(t, "retry with a made-up token", answerOf(remote(h, "POST", retry, "", append(same, "X-CSRF-Token", csrf+"x")...)), 403, api.CodeForbidden, "csrf")
		wantError(t, "retry from another site", answerOf(remote(h, "POST", retry, "", "Cookie", c, "Origin", "http://evil.example",
			"X-CSRF-Token", csrf)), 403, api.CodeForbidden, "origin")
		if r, _ := s.Receipt("ev-1"); r.State != shopbridge.ReceiptParked {
			t.Fatalf("a refused retry moved the receipt to %s", r.State)
		}
		if rec := remote(h, "POST", retry, "", append(same, "X-CSRF-Token", csrf)...); rec.Code != 200 {
			t.Fatalf("retry with the page's token = %d %s", rec.Code, rec.Body)
		}
		if r, _ := s.Receipt("ev-1"); r.State != shopbridge.ReceiptQueued {
			t.Errorf("after retry the receipt is %s", r.State)
		}
	})

	t.Run("programs with the bearer token need no session nor CSRF", func(t *testing.T) {
		if err := s.Park("ev-1", "HTTP 400: again"); err != nil {
			t.Fatal(err)
		}
		if rec := remote(h, "POST", "/admin/api/outbox/ev-1/retry", "", "Authorization", "Bearer "+token); rec.Code != 200 {
			t.Errorf("retry with the bearer token = %d %s", rec.Code, rec.Body)
		}
	})

	t.Run("logout ends the session", func(t *testing.T) {
		c := "shopbridge_session=" + cookie.Value
		csrf := pageCSRF(t, remote(h, "GET", "/admin/", "", "Cookie", c).Body.Bytes())
		wantError(t, "logout without the token", answerOf(remote(h, "POST", "/admin/logout", "csrf=", "Cookie", c)), 403, api.CodeForbidden, "csrf")
		rec := remote(h, "POST", "/admin/logout", "csrf="+url.QueryEscape(csrf), "Cookie", c, "Origin", "http://shop-pc:8480")
		if rec.Code != 303 || rec.Header().Get("Location") != "/admin/login" {
			t.Fatalf("logout = %d", rec.Code)
		}
		wantError(t, "API after logout", answerOf(remote(h, "GET", "/admin/api/overview", "", "Cookie", c)), 401, api.CodeUnauthorized, "Authorization")
	})

	t.Run("five wrong tokens lock the address out for a while", func(t *testing.T) {
		form := remote(h, "GET", "/admin/login", "")
		csrf := url.QueryEscape(pageCSRF(t, form.Body.Bytes()))
		codes := []int{}
		for range 6 {
			req := httptest.NewRequest("POST", "/admin/login", strings.NewReader("csrf="+csrf+"&token=guess"))
			req.RemoteAddr = "192.168.1.66:1"
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			codes = append(codes, rec.Code)
		}
		// Even the right token is refused while locked; other addresses are not.
		req := httptest.NewRequest("POST", "/admin/login", strings.NewReader("csrf="+csrf+"&token="+token))
		req.RemoteAddr = "192.168.1.66:1"
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
		if fmt.Sprint(codes) != "[401 401 401 401 401 429 429]" {
			t.Errorf("login codes = %v", codes)
		}
		if rec := remote(h, "POST", "/admin/login", "csrf="+csrf+"&token="+token); rec.Code != 303 {
			t.Errorf("another address while one is locked = %d", rec.Code)
		}
	})
}

func TestConsoleCSRFLoopback(t *testing.T) {
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	park := func() {
		t.Helper()
		if r, err := ts.store.Receipt("ev-9"); err != nil {
			if _, err := ts.store.AcceptReceipt(&shopbridge.Receipt{EventID: "ev-9", Body: []byte(`{"id":"ev-9","data":{}}`)}); err != nil {
				t.Fatal(err)
			}
		} else if r.State == shopbridge.ReceiptParked {
			return
		}
		if err := ts.store.Park("ev-9", "HTTP 400: no"); err != nil {
			t.Fatal(err)
		}
	}
	park()
	u, _ := url.Parse(ts.URL)
	origin := "http://" + u.Host
	csrf := pageCSRF(t, ts.get(t, "/admin/").body)
	retry := "/admin/api/outbox/ev-9/retry"

	for _, c := range []struct {
		name    string
		header  []string
		subject string
	}{
		{"a form on another site (other port, same host)", []string{"Origin", "http://127.0.0.1:1", "Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "navigate"}, "origin"},
		{"fetch from another site", []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "X-CSRF-Token", csrf}, "origin"},
		{"another site that hides Sec-Fetch", []string{"Origin", "http://evil.example", "X-CSRF-Token", csrf}, "origin"},
		{"an opaque origin", []string{"Origin", "null", "X-CSRF-Token", csrf}, "origin"},
		{"an opaque origin from another site", []string{"Origin", "null", "Sec-Fetch-Site", "cross-site", "X-CSRF-Token", csrf}, "origin"},
		{"the console's origin without the token", []string{"Origin", origin, "Sec-Fetch-Site", "same-origin"}, "csrf"},
		{"a browser sending cookies only", []string{"Cookie", "x=1"}, "csrf"},
		{"a wrong token", []string{"Origin", origin, "X-CSRF-Token", "AAAA"}, "csrf"},
	} {
		wantError(t, c.name, ts.post(t, retry, "", c.header...), 403, api.CodeForbidden, c.subject)
		if r, _ := ts.store.Receipt("ev-9"); r.State != shopbridge.ReceiptParked {
			t.Fatalf("%s: the receipt left the parked list", c.name)
		}
	}
	if a := ts.post(t, retry, "", "Origin", origin, "Sec-Fetch-Site", "same-origin", "X-CSRF-Token", csrf); a.status != 200 {
		t.Errorf("retry from the console page = %d %s", a.status, a.body)
	}
	// A browser under a strict referrer policy sends Origin: null with
	// its own form posts; Sec-Fetch-Site says they are the console's.
	park()
	if a := ts.post(t, retry, "", "Origin", "null", "Sec-Fetch-Site", "same-origin", "X-CSRF-Token", csrf); a.status != 200 {
		t.Errorf("retry with Origin null from the console's own page = %d %s", a.status, a.body)
	}
	// shopbridge outbox retry: a program on loopback, no browser headers.
	park()
	if a := ts.post(t, retry, ""); a.status != 200 {
		t.Errorf("retry from the CLI = %d %s", a.status, a.body)
	}

	// DNS rebinding: a browser on loopback under another site's name.
	withHost := func(path, host string, header ...string) answer {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.URL+path, nil)
		req.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return answer{resp.StatusCode, resp.Header, buf.Bytes()}
	}
	wantError(t, "console under a foreign host name", withHost("/admin/api/overview", "evil.example:8480", "Sec-Fetch-Site", "same-origin"), 403, api.CodeForbidden, "Host")
	if a := withHost("/admin/", "evil.example", "Sec-Fetch-Mode", "navigate"); a.status != 403 || !strings.Contains(string(a.body), "127.0.0.1") {
		t.Errorf("console page under a foreign host name = %d", a.status)
	}
	if a := withHost("/admin/api/overview", "localhost:"+u.Port(), "Sec-Fetch-Site", "same-origin"); a.status != 200 {
		t.Errorf("console at localhost = %d", a.status)
	}
	// DNS rebinding needs no browser headers (issue 16.8): a request
	// without them under a name that is not this machine's is refused
	// too; the CLI reaches the daemon by loopback, an address of this PC
	// or a name of it (--admin-hosts for further ones).
	wantError(t, "status for a program under another host name", withHost("/admin/api/status", "shop-pc.example:8480"), 403, api.CodeForbidden, "Host")
}

func consoleGet(t *testing.T, ts *testServer, path string, v any) {
	t.Helper()
	a := ts.get(t, path)
	if a.status != 200 {
		t.Fatalf("%s = %d %s", path, a.status, a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s Cache-Control = %q", path, a.header.Get("Cache-Control"))
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("%s: %v in %s", path, err, a.body)
	}
}

var msk = time.FixedZone("MSK", 3*3600)

func TestConsoleOverview(t *testing.T) {
	now := time.Date(2026, 3, 22, 21, 0, 0, 0, time.UTC)
	since := now.Add(-90 * time.Second)
	ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return now }, Status: func() api.Status {
		t.Error("the overview asked for the whole status, which walks every parked receipt")
		return api.Status{}
	}, BriefStatus: func() api.Status {
		return api.Status{Version: "v9", Name: "till-1", Upstream: shopbridge.UpstreamOffline, UpstreamSince: &since, LastErrorAt: &since,
			LastError: "dial tcp: connection refused", Terminals: []storage.Terminal{{Device: "dev-1", Address: "192.168.1.20", LastSeen: since, LastKind: "LIST"}},
			MDNS:  shopbridge.MDNSStatus{State: "announcing"},
			Clock: &shopbridge.ClockStatus{SkewSeconds: 31536000, MeasuredAt: since, OK: false, MaxSeconds: 120}}
	}})
	seed(t, ts.store)
	for i, id := range []string{"a", "b", "c"} {
		if _, err := ts.store.AcceptReceipt(&shopbridge.Receipt{EventID: id, Body: []byte(`{}`), Type: "SELL", BillID: "49024",
			ReceivedAt: now.Add(-time.Duration(10-i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.store.Park("a", "HTTP 400: bad inn"); err != nil {
		t.Fatal(err)
	}
	var o api.Overview
	consoleGet(t, ts, "/admin/api/overview", &o)
	if o.Upstream != "offline" || o.UpstreamSince.Local != "2026-03-22 23:58:30" || o.LastError == "" || o.LastErrorAt.Local != "2026-03-22 23:58:30" || o.Version != "v9" || o.Name != "till-1" {
		t.Errorf("upstream part: %+v", o)
	}
	if o.Now.Local != "2026-03-23 00:00:00" || o.Timezone != "MSK" || o.MDNS.State != "announcing" {
		t.Errorf("now %+v, zone %q, mdns %+v", o.Now, o.Timezone, o.MDNS)
	}
	if o.Outbox != 2 || o.OutboxOldest == nil || *o.OutboxOldestAgeS != 540 || o.Parked != 1 || len(o.ParkedReceipts) != 1 {
		t.Fatalf("outbox %d oldest %v age %v parked %d %v", o.Outbox, o.OutboxOldest, o.OutboxOldestAgeS, o.Parked, o.ParkedReceipts)
	}
	if p := o.ParkedReceipts[0]; p.EventID != "a" || p.Answer != "HTTP 400: bad inn" || p.BillID != "49024" || p.ReceivedAt.Local != "2026-03-22 23:50:00" {
		t.Errorf("parked = %+v", p)
	}
	if o.PaidTwiceCount != 1 || len(o.PaidTwice) != 1 || o.PaidTwice[0].ID != "49024" || o.PaidTwice[0].Summ != "3216.02" || o.PaidTwice[0].State != "paid_twice" {
		t.Errorf("paid twice = %d %+v", o.PaidTwiceCount, o.PaidTwice)
	}
	if len(o.Terminals) != 1 || o.Terminals[0].Device != "dev-1" || o.Terminals[0].LastSeen.Local != "2026-03-22 23:58:30" {
		t.Errorf("terminals = %+v", o.Terminals)
	}
	if o.Bills != 4 || o.Receipts != 3 {
		t.Errorf("counts: %d bills, %d receipts", o.Bills, o.Receipts)
	}
	if c := o.Clock; c == nil || c.SkewSeconds != 31536000 || c.OK || c.MaxSeconds != 120 || c.MeasuredAt == nil || c.MeasuredAt.Local != "2026-03-22 23:58:30" {
		t.Errorf("clock = %+v, want a year behind, measured at 23:58:30 MSK", c)
	}
}

func TestConsoleJournalAPI(t *testing.T) {
	t0 := time.Date(2026, 3, 22, 18, 0, 0, 0, time.UTC) // 21:00 in Moscow
	ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return t0.Add(time.Hour) }})
	if _, err := ts.store.AcceptReceipt(&shopbridge.Receipt{EventID: "7c1e-ev", Body: []byte(`{"id":"7c1e-ev","data":{"type":"SELL"}}`)}); err != nil {
		t.Fatal(err)
	}
	var es []shopbridge.JournalEntry
	for i := range 120 {
		e := shopbridge.JournalEntry{Time: t0.Add(time.Duration(i) * 10 * time.Second), Client: "192.168.1.20", Device: fmt.Sprint("dev-", i%2),
			Kind: "BILL", Method: "GET", Path: "/api/v2/bill/byid/49040", Status: 200, Duration: 1500 * time.Microsecond, Source: "store",
			RespBody: []byte(`{"id": 123456789012345678901, "summ": 4604.04, "customer": {"name": "Илья"}}`)}
		if i == 60 {
			e.Kind, e.Method, e.Path, e.RespBody, e.ReqReceipt = "RECEIPT", "POST", "/api/v2/receipts", nil, "7c1e-ev"
		}
		es = append(es, e)
	}
	if err := ts.store.AppendJournal(es); err != nil {
		t.Fatal(err)
	}

	var p api.ConsoleJournalPage
	consoleGet(t, ts, "/admin/api/journal/page?limit=50", &p)
	if len(p.Rows) != 50 || p.Rows[0].Seq != 120 || p.Next != 71 || p.Done || p.Total != 120 || p.Newest != 120 {
		t.Fatalf("first page: %d rows from %d, next %d, done %v, total %d, newest %d", len(p.Rows), p.Rows[0].Seq, p.Next, p.Done, p.Total, p.Newest)
	}
	r := p.Rows[0]
	if r.Time.Local != "2026-03-22 21:19:50" || r.Kind != "BILL" || r.Device != "dev-1" || r.DurationMS != 1.5 ||
		r.ResponsePreview != `{"id": 123456789012345678901, "summ": 4604.04, "customer": {"name": "Илья"}}` || r.RequestSize != 0 || r.RequestPretty != nil {
		t.Errorf("row = %+v", r)
	}
	consoleGet(t, ts, fmt.Sprintf("/admin/api/journal/page?limit=50&before=%d", p.Next), &p)
	if len(p.Rows) != 50 || p.Rows[0].Seq != 70 {
		t.Errorf("second page starts at %d", p.Rows[0].Seq)
	}

	// The receipt found by its event id, its body from the receipt store.
	consoleGet(t, ts, "/admin/api/journal/page?text=7C1E-EV", &p)
	if len(p.Rows) != 1 || p.Rows[0].Seq != 61 || p.Rows[0].Receipt != "7c1e-ev" || !strings.Contains(p.Rows[0].RequestPreview, `"type":"SELL"`) || !p.Done {
		t.Fatalf("search by event id = %+v", p)
	}
	var e api.ConsoleRow
	consoleGet(t, ts, "/admin/api/journal/entry/61", &e)
	if e.RequestPretty == nil || *e.RequestPretty != "{\n  \"id\": \"7c1e-ev\",\n  \"data\": {\n    \"type\": \"SELL\"\n  }\n}" {
		t.Errorf("entry 61 request = %v", e.RequestPretty)
	}
	consoleGet(t, ts, "/admin/api/journal/entry/120", &e)
	if e.ResponsePretty == nil || !strings.Contains(*e.ResponsePretty, `"id": 123456789012345678901,`) || !strings.Contains(*e.ResponsePretty, `"summ": 4604.04,`) {
		t.Errorf("entry 120 response = %v", e.ResponsePretty)
	}
	wantError(t, "unknown entry", ts.get(t, "/admin/api/journal/entry/999"), 404, api.CodeNotFound, "seq")
	wantError(t, "entry by a word", ts.get(t, "/admin/api/journal/entry/last"), 404, api.CodeNotFound, "seq")

	// Kind, terminal and the shop's-zone time range.
	consoleGet(t, ts, "/admin/api/journal/page?kind=receipt", &p)
	if len(p.Rows) != 1 || p.Rows[0].Kind != "RECEIPT" {
		t.Errorf("kind=receipt: %d rows", len(p.Rows))
	}
	consoleGet(t, ts, "/admin/api/journal/page?terminal=dev-0&limit=500", &p)
	if len(p.Rows) != 60 {
		t.Errorf("terminal=dev-0: %d rows", len(p.Rows))
	}
	consoleGet(t, ts, "/admin/api/journal/page?since=2026-03-22T21:01&until=2026-03-22T21:02&limit=500", &p)
	if len(p.Rows) != 6 || p.Rows[0].Time.Local != "2026-03-22 21:01:50" || p.Rows[5].Time.Local != "2026-03-22 21:01:00" {
		t.Errorf("one minute in Moscow: %d rows %+v", len(p.Rows), p.Rows)
	}
	consoleGet(t, ts, "/admin/api/journal/page?since=45m", &p) // now is 22:00 Moscow: entries from 21:15
	if len(p.Rows) != 30 {
		t.Errorf("since=45m: %d rows", len(p.Rows))
	}
	consoleGet(t, ts, "/admin/api/journal/page?after=115", &p)
	if len(p.Rows) != 5 || p.Rows[4].Seq != 116 || !p.Done {
		t.Errorf("tail after 115: %d rows", len(p.Rows))
	}

	for _, c := range []struct{ query, subject string }{
		{"before=x", "before"}, {"after=-1", "after"}, {"limit=0", "limit"}, {"limit=501", "limit"},
		{"since=yesterday", "since"}, {"until=2026-13-01", "until"}, {"since=1h&until=2h", "until"},
		{"text=" + strings.Repeat("я", 201), "text"}, {"kind=%zz", "query"},
	} {
		a := ts.get(t, "/admin/api/journal/page?"+c.query)
		code := api.CodeInvalidValue
		if c.subject == "query" {
			code = api.CodeSyntax
		}
		wantError(t, c.query, a, 400, code, c.subject)
	}
}

func TestConsoleBillsAPI(t *testing.T) {
	now := time.Date(2026, 3, 22, 20, 0, 0, 0, time.UTC) // 23:00 in Moscow, the 22nd
	ts := newServer(t, api.Config{Timezone: msk, Now: func() time.Time { return now }})
	seed(t, ts.store)
	for _, r := range []*shopbridge.Receipt{
		{EventID: "s1", Type: "SELL", BillID: "49024", Body: []byte(`{"id":"s1"}`), ReceivedAt: now},
		{EventID: "s2", Type: "SELL", BillID: "49024", Body: []byte(`{"id":"s2"}`), ReceivedAt: now.Add(time.Minute)},
		{EventID: "s3", Type: "SELL", BillID: "49020", Body: []byte(`{"id":"s3"}`), ReceivedAt: now},
	} {
		if _, err := ts.store.AcceptReceipt(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.store.MarkDelivered("s1", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := ts.store.Park("s2", "HTTP 400: twice"); err != nil {
		t.Fatal(err)
	}

	var b api.ConsoleBills
	consoleGet(t, ts, "/admin/api/bills", &b)
	if b.Date != "2026-03-22" || fmt.Sprint(b.Counts) != "map[all:2 open:0 paid_twice:1 settled:1]" || len(b.Bills) != 2 {
		t.Fatalf("today = %+v", b)
	}
	if b.Bills[0].ID != "49024" || b.Bills[0].State != "paid_twice" || b.Bills[0].Summ != "3216.02" || b.Bills[1].State != "settled" {
		t.Errorf("today's bills = %+v", b.Bills)
	}
	consoleGet(t, ts, "/admin/api/bills?date=2026-03-22&state=settled", &b)
	if len(b.Bills) != 1 || b.Bills[0].ID != "49020" {
		t.Errorf("settled = %+v", b.Bills)
	}
	consoleGet(t, ts, "/admin/api/bills?date=2026-03-20&limit=1", &b)
	if len(b.Bills) != 1 || b.Bills[0].Number != "48934-CRM" || b.Bills[0].State != "open" || b.Next != "" {
		t.Errorf("the 20th = %+v", b)
	}
	b = api.ConsoleBills{}
	consoleGet(t, ts, "/admin/api/bills?q=4904", &b)
	if len(b.Bills) != 1 || b.Bills[0].Number != "49040-CRM" || b.Counts != nil {
		t.Errorf("q=4904 = %+v", b)
	}
	consoleGet(t, ts, "/admin/api/bills?q=123456789012345678901", &b)
	if len(b.Bills) != 1 || b.Bills[0].ID != "123456789012345678901" {
		t.Errorf("q=the long id = %+v", b)
	}

	var d api.ConsoleBillDetail
	consoleGet(t, ts, "/admin/api/bill/49024", &d)
	var states []string
	for _, r := range d.Receipts {
		states = append(states, r.EventID+":"+r.State)
	}
	if d.Bill.State != "paid_twice" || fmt.Sprint(states) != "[s1:delivered s2:parked]" || d.Receipts[0].DeliveredAt.Local != "2026-03-22 23:00:01" ||
		d.Receipts[1].LastError != "HTTP 400: twice" || d.BodyPretty != "" {
		t.Errorf("bill 49024 = %+v", d)
	}
	d = api.ConsoleBillDetail{}
	consoleGet(t, ts, "/admin/api/bill/123456789012345678901", &d)
	if !strings.Contains(d.BodyPretty, "\n  \"id\": 123456789012345678901,\n  \"date\"") || len(d.Receipts) != 0 {
		t.Errorf("the long id's body = %q", d.BodyPretty)
	}
	wantError(t, "unknown bill", ts.get(t, "/admin/api/bill/1"), 404, api.CodeNotFound, "id")
	wantError(t, "bad bill id", ts.get(t, "/admin/api/bill/x1"), 404, api.CodeNotFound, "id")
	wantError(t, "bad date", ts.get(t, "/admin/api/bills?date=22.03.2026"), 400, api.CodeInvalidValue, "date")
	wantError(t, "bad state", ts.get(t, "/admin/api/bills?state=paid"), 400, api.CodeInvalidValue, "state")
	wantError(t, "bad cursor", ts.get(t, "/admin/api/bills?after=zz"), 400, api.CodeInvalidValue, "after")
}
