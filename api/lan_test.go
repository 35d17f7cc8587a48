package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/storetest"
)

// TestTerminalRefusesWebPages: a page open in a browser on the shop LAN
// must not fake receipts or read bills (issue 16.5). Each case is a request
// as a browser sends it; registers send none of these headers.
func TestTerminalRefusesWebPages(t *testing.T) {
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	u, _ := url.Parse(ts.URL)
	self := "http://" + u.Host
	receipt := func(id string) string { return receiptBody(id, "SELL", "49024", "FullSettlement") }
	cases := []struct {
		name   string
		method string
		path   string
		header []string
	}{
		{"form post from another site (text/plain)", "POST", "/api/v2/receipts", []string{"Content-Type", "text/plain", "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}},
		{"fetch from another site", "POST", "/api/v2/receipts", []string{"Content-Type", "text/plain", "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors"}},
		{"fetch from a sibling host", "POST", "/api/v2/receipts", []string{"Origin", "http://shop-pc.lan:8000", "Sec-Fetch-Site", "same-site", "Sec-Fetch-Mode", "cors"}},
		{"DNS-rebound page, same origin", "POST", "/api/v2/receipts", []string{"Origin", self, "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "cors"}},
		{"old browser: Origin only", "POST", "/api/v2/receipts", []string{"Origin", "http://evil.example"}},
		{"sandboxed frame: Origin null", "POST", "/api/v2/receipts", []string{"Origin", "null"}},
		{"old browser: Referer only", "POST", "/api/v2/receipts", []string{"Referer", "http://evil.example/page.html"}},
		{"Sec-Fetch-Mode cors alone", "POST", "/api/v2/receipts", []string{"Sec-Fetch-Mode", "cors"}},
		{"CORS preflight", "OPTIONS", "/api/v2/receipts", []string{"Origin", "http://evil.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"}},
		{"preflight without Origin", "OPTIONS", "/api/v2/receipts", []string{"Access-Control-Request-Method", "POST"}},
		{"image tag reading the list", "GET", "/api/v2/list", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image"}},
		{"fetch of a bill", "GET", "/api/v2/bill/byid/49024", []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"}},
		{"fetch of hello", "GET", "/api/v2/hello", []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "cors"}},
		{"unknown terminal route", "GET", "/api/v2/nothing", []string{"Sec-Fetch-Site", "cross-site"}},
	}
	for i, c := range cases {
		id := fmt.Sprintf("ev-web-%d", i)
		var body io.Reader
		if c.method == "POST" {
			body = strings.NewReader(receipt(id))
		}
		n := ts.journal.Len()
		wantError(t, c.name, ts.do(t, c.method, c.path, body, c.header...), 403, api.CodeBrowser, "origin")
		if _, err := ts.store.Receipt(id); err == nil {
			t.Errorf("%s: the receipt was stored", c.name)
		}
		if entries := ts.journal.Entries(); len(entries) != n+1 {
			t.Errorf("%s: %d journal entries, want one more than %d", c.name, len(entries), n)
		} else if e := entries[n]; e.Status != 403 || e.Path != c.path || e.Source != "" {
			t.Errorf("%s: journal entry %+v", c.name, e)
		}
	}
	if n := ts.store.OutboxLen(); n != 0 {
		t.Errorf("outbox holds %d receipts after web pages posted", n)
	}
	// Header names in any case, straight off the wire: net/http keys them
	// canonically, and the checks look them up so.
	for _, h := range []string{"origin: http://evil.example", "SEC-FETCH-SITE: cross-site", "referer: http://evil.example/", "sec-fetch-mode: cors"} {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /api/v2/hello HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n", u.Host, h)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(b), fmt.Sprint(api.CodeBrowser)) {
			t.Errorf("hello with %q: %d %s, want 403 with code %d", h, resp.StatusCode, b, api.CodeBrowser)
		}
	}
	if a := ts.get(t, "/api/v2/list"); a.status != 200 || !strings.Contains(string(a.body), "49024") {
		t.Errorf("bill 49024 was settled by a web page: list %d %s", a.status, a.body)
	}

	// Registers, as Evotor's proxy sends them, and a person typing the
	// URL into the address bar.
	register := []string{"Content-Type", "application/json", "X-Evotor-Store-Uuid", "20180820-aaaa", "X-Evotor-Device-Uuid", "20180820-dev1",
		"X-Evotor-User-Id", "01-000000000123", "User-Agent", "okhttp/3.12.0"}
	if a := ts.post(t, "/api/v2/receipts", receipt("ev-register"), register...); a.status != 200 {
		t.Errorf("register's receipt: %d %s", a.status, a.body)
	}
	for _, p := range []string{"/api/v2/hello", "/api/v2/list", "/api/v2/bill/byid/123456789012345678901"} {
		if a := ts.get(t, p, register...); a.status != 200 {
			t.Errorf("register's %s: %d %s", p, a.status, a.body)
		}
		if a := ts.get(t, p, "Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-User", "?1"); a.status != 200 {
			t.Errorf("typed URL %s: %d %s", p, a.status, a.body)
		}
	}
}

// TestAdminRefusesForeignHost: DNS rebinding over loopback needs no
// browser header at all (issue 16.8). Every operator endpoint refuses a
// Host that is not this machine's, whatever else the request carries.
func TestAdminRefusesForeignHost(t *testing.T) {
	ts := newServer(t, api.Config{Hosts: []string{"shop-pc.lan"}})
	seed(t, ts.store)
	u, _ := url.Parse(ts.URL)
	do := func(method, path, host string, header ...string) answer {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		req.Host = host
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, b}
	}
	endpoints := []struct{ method, path string }{
		{"GET", "/admin/api/status"}, {"GET", "/admin/api/journal"}, {"POST", "/admin/api/outbox/ev-1/retry"},
		{"GET", "/admin/api/backup"}, {"GET", "/metrics"}, {"GET", "/admin/"}, {"GET", "/admin/login"}, {"GET", "/admin/api/overview"},
	}
	for _, host := range []string{"rebind.evil.example", "rebind.evil.example:" + u.Port(), "127.0.0.1.evil.example", "localhost.evil.example", "shop-pc.lan.evil.example", "[::2]:80", "8.8.8.8"} {
		for _, e := range endpoints {
			wantError(t, e.method+" "+e.path+" Host "+host, do(e.method, e.path, host), 403, api.CodeForbidden, "Host")
		}
	}
	// A browser gets the console's refusal page, with the same status.
	if a := do("GET", "/admin/", "rebind.evil.example", "Accept", "text/html,*/*;q=0.8"); a.status != 403 ||
		!strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(string(a.body), `data-testid="refused"`) {
		t.Errorf("browser under a foreign Host: %d %s %.300s", a.status, a.header.Get("Content-Type"), a.body)
	}
	hn, _ := os.Hostname()
	short, _, _ := strings.Cut(hn, ".")
	for _, host := range []string{u.Host, "127.0.0.1", "localhost:" + u.Port(), "LOCALHOST", "shop.localhost", "[::1]:" + u.Port(), "127.1.2.3:1",
		hn, short + ".local:" + u.Port(), "shop-pc.lan", "SHOP-PC.LAN.:" + u.Port()} {
		if a := do("GET", "/admin/api/status", host); a.status != 200 {
			t.Errorf("status under Host %q: %d %s", host, a.status, a.body)
		}
	}
	// The terminal API and healthz stay open to any name a register uses.
	if a := do("GET", "/api/v2/list", "rebind.evil.example"); a.status != 200 {
		t.Errorf("list under a foreign Host: %d", a.status)
	}
	if a := do("GET", "/healthz", "rebind.evil.example"); a.status != 200 {
		t.Errorf("healthz under a foreign Host: %d", a.status)
	}
}

// clock is a settable time for the limiter tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func from(h http.Handler, addr, method, target, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = addr
	req.Host = "shop-pc:8480"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestTokenLimiter: one limiter for every way a token is presented, which
// a flood of addresses cannot reset (issue 16.6).
func TestTokenLimiter(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 22, 12, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	var logMu sync.Mutex
	h := api.New(api.Config{Store: storetest.MustOpen(t), Hosts: testHosts, AdminToken: "adm1n-token", TerminalToken: "term-token",
		Now: clk.now, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))})
	admin := func(addr, token string) *httptest.ResponseRecorder {
		return from(h, addr, "GET", "/admin/api/status", "", "Authorization", "Bearer "+token)
	}
	terminal := func(addr, token string) *httptest.ResponseRecorder {
		return from(h, addr, "GET", "/api/v2/list", "", "Authorization", "Bearer "+token)
	}
	codes := func(recs ...*httptest.ResponseRecorder) string {
		var s []string
		for _, r := range recs {
			s = append(s, strconv.Itoa(r.Code))
		}
		return strings.Join(s, " ")
	}

	// A register that presented its token before any attack.
	if r := terminal("192.168.1.50:1", "term-token"); r.Code != 200 {
		t.Fatalf("register: %d %s", r.Code, r.Body)
	}

	// Five wrong tokens, admin and terminal mixed: locked, the right one too.
	a := "192.168.1.66:1000"
	got := codes(admin(a, "guess1"), terminal(a, "guess2"), admin(a, "guess3"), terminal(a, "guess4"), admin(a, "guess5"),
		admin(a, "guess6"), admin(a, "adm1n-token"), terminal(a, "term-token"))
	if got != "401 401 401 401 401 429 429 429" {
		t.Errorf("codes from the guessing address = %s", got)
	}
	r := admin(a, "adm1n-token")
	wantError(t, "locked address", answerOf(r), 429, api.CodeLocked, "Authorization")
	if ra, err := strconv.Atoi(r.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q", r.Header().Get("Retry-After"))
	}
	// Another port of the same address, and the login form: the same lock.
	if r := admin("192.168.1.66:2000", "adm1n-token"); r.Code != 429 {
		t.Errorf("same address, other port: %d", r.Code)
	}

	// 1,030 other addresses one wrong token each: the locked address
	// gets no fresh tries, and the flood itself is held to the global
	// budget: most of it is refused unheard.
	flood := map[int]int{}
	for i := range 1030 {
		addr := fmt.Sprintf("10.%d.%d.%d:5000", i/65536, (i/256)%256, i%256)
		flood[admin(addr, "guess").Code]++
	}
	if flood[401] > 40 || flood[429] < 990 {
		t.Errorf("flood of 1,030 addresses: %v, want at most the global budget (30) heard", flood)
	}
	if r := admin(a, "adm1n-token"); r.Code != 429 {
		t.Errorf("locked address after the flood: %d", r.Code)
	}
	// And beyond the limiter's table (4,096 networks): still locked.
	for i := range 5000 {
		admin(fmt.Sprintf("172.16.%d.%d:5000", i/256, i%256), "guess")
	}
	if r := admin(a, "adm1n-token"); r.Code != 429 {
		t.Errorf("locked address after 5,000 more: %d", r.Code)
	}
	// While the global budget is spent: the register that presented its
	// token lately keeps working; an address never seen with the right
	// token must wait (the cost of the flood, see docs/security.md).
	if r := terminal("192.168.1.50:2", "term-token"); r.Code != 200 {
		t.Errorf("known register during the flood: %d %s", r.Code, r.Body)
	}
	if r := admin("192.168.1.77:1", "adm1n-token"); r.Code != 429 {
		t.Errorf("new address during the flood: %d", r.Code)
	}
	// An address that presented a right token is not locked by its own
	// wrong ones either: a Prometheus with a second, stale-token job
	// scraping every second keeps its right job (their wrong ones still
	// spend the global budget and are answered 401, compared).
	clk.add(2 * time.Minute)
	prom := "192.168.1.90:1"
	if r := admin(prom, "adm1n-token"); r.Code != 200 {
		t.Fatalf("Prometheus: %d", r.Code)
	}
	var promCodes []string
	for range 8 {
		promCodes = append(promCodes, strconv.Itoa(admin(prom, "stale-token").Code), strconv.Itoa(admin(prom, "adm1n-token").Code))
	}
	if strings.Join(promCodes, " ") != strings.TrimSpace(strings.Repeat("401 200 ", 8)) {
		t.Errorf("Prometheus with a stale job: %v", promCodes)
	}
	// IPv6: one /64 is one client, whatever the interface id; the
	// exemption is for the exact address that used the token.
	if r := admin("[fd00:1:2:3::50]:1", "adm1n-token"); r.Code != 200 {
		t.Fatalf("IPv6 client: %d", r.Code)
	}
	for i := range 5 {
		admin(fmt.Sprintf("[fd00:1:2:3::%x]:1", i+1), "guess")
	}
	clk.add(2 * time.Minute) // the window and the global budget recover
	if r := admin("[fd00:1:2:3::99]:1", "guess"); r.Code != 401 {
		t.Errorf("IPv6 after the window: %d", r.Code)
	}
	for i := range 4 {
		admin(fmt.Sprintf("[fd00:1:2:3::%x]:1", i+100), "guess")
	}
	if r := admin("[fd00:1:2:3:ffff::1]:1", "adm1n-token"); r.Code != 429 {
		t.Errorf("another address of a locked /64: %d", r.Code)
	}
	if r := admin("[fd00:1:2:3::50]:1", "adm1n-token"); r.Code != 200 {
		t.Errorf("the known address in a locked /64: %d", r.Code)
	}
	if r := admin("[fd00:1:2:4::1]:1", "adm1n-token"); r.Code != 200 {
		t.Errorf("another /64: %d", r.Code)
	}
	if r := admin(a, "adm1n-token"); r.Code != 200 {
		t.Errorf("the first address after its window: %d %s", r.Code, r.Body)
	}
	// Loopback needs no token for /admin, so a wrong one there is not
	// counted (the CLI on the shop PC is never locked out).
	for range 10 {
		admin("127.0.0.1:1", "guess")
	}
	if r := admin("127.0.0.1:1", "adm1n-token"); r.Code != 200 {
		t.Errorf("loopback: %d", r.Code)
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "client locked out") || !strings.Contains(out, "wrong tokens from many addresses") || strings.Contains(out, "guess") || strings.Contains(out, "adm1n") {
		t.Errorf("log:\n%s", out)
	}
	if n := strings.Count(out, "wrong tokens from many addresses"); n != 1 {
		t.Errorf("the global lock was logged %d times, want once", n)
	}
}

// TestLoginFormSharesTheLimiter: the console's login form counts into the
// same limiter as the Bearer header.
func TestLoginFormSharesTheLimiter(t *testing.T) {
	const token = "adm1n-token"
	h := api.New(api.Config{Store: storetest.MustOpen(t), Hosts: testHosts, AdminToken: token, Logger: quietLogger()})
	form := remote(h, "GET", "/admin/login", "")
	csrf := url.QueryEscape(pageCSRF(t, form.Body.Bytes()))
	addr := "192.168.1.66:1"
	for range 3 {
		from(h, addr, "GET", "/admin/api/status", "", "Authorization", "Bearer guess")
	}
	var got []string
	for range 3 {
		r := from(h, addr, "POST", "/admin/login", "csrf="+csrf+"&token=guess", "Content-Type", "application/x-www-form-urlencoded")
		got = append(got, strconv.Itoa(r.Code))
	}
	if strings.Join(got, " ") != "401 401 429" {
		t.Errorf("login after three wrong Bearer tokens: %v", got)
	}
	if r := from(h, addr, "GET", "/admin/api/status", "", "Authorization", "Bearer "+token); r.Code != 429 {
		t.Errorf("Bearer after the form's failures: %d", r.Code)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestClientDataLimits: identifiers that become store keys or log text
// are bounded; over the bound is a 400 naming the limit, never a 500 and
// never a log line carrying the client's text (issue 16.9).
func TestClientDataLimits(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	ts := newServer(t, api.Config{Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))})
	seed(t, ts.store)
	long := strings.Repeat("x", 33<<10)
	wantLimit := func(what string, a answer, subject string) {
		t.Helper()
		wantError(t, what, a, 400, api.CodeInvalidValue, subject)
		if !strings.Contains(string(a.body), "128-byte limit") || len(a.body) > 1024 {
			t.Errorf("%s: body %.300s does not name the limit briefly", what, a.body)
		}
	}
	wantLimit("receipt id of 33 KiB", ts.post(t, "/api/v2/receipts", receiptBody(long, "SELL", "", "")), "id")
	wantLimit("billId of 40 KB", ts.post(t, "/api/v2/receipts", receiptBody("ev-long-bill", "SELL", strings.Repeat("7", 40000), "")), "data.extras.billId")
	wantLimit("settlementMethod of 33 KiB", ts.post(t, "/api/v2/receipts", receiptBody("ev-long-method", "SELL", "49024", long)), "data.extras.settlementMethod")
	wantLimit("deviceId of 33 KiB", ts.post(t, "/api/v2/receipts", `{"id":"ev-long-dev","data":{"type":"SELL","deviceId":"`+long+`"}}`), "data.deviceId")
	wantLimit("device header of 60 KB", ts.post(t, "/api/v2/receipts", receiptBody("ev-long-hdr", "SELL", "", ""), "X-Evotor-Device-Uuid", strings.Repeat("d", 60000)), "X-Evotor-Device-UUID")
	wantLimit("device header on list", ts.get(t, "/api/v2/list", "X-Evotor-Device-Uuid", strings.Repeat("d", 200)), "X-Evotor-Device-UUID")
	wantLimit("number= of 8000", ts.get(t, "/api/v2/list?number="+strings.Repeat("5", 8000)), "number")
	wantLimit("retry of a long id", ts.post(t, "/admin/api/outbox/"+strings.Repeat("e", 8000)+"/retry", ""), "id")
	a := ts.get(t, "/api/v2/bill/byid/"+strings.Repeat("9", 8000))
	wantError(t, "bill of a long id", a, 404, api.CodeNotFound, "id")
	if len(a.body) > 1024 {
		t.Errorf("bill of a long id: %d-byte answer", len(a.body))
	}
	for _, id := range []string{"ev-long-bill", "ev-long-method", "ev-long-dev", "ev-long-hdr"} {
		if _, err := ts.store.Receipt(id); err == nil {
			t.Errorf("%s was stored", id)
		}
	}
	// At the limit: taken.
	if a := ts.post(t, "/api/v2/receipts", receiptBody(strings.Repeat("i", shopbridge.MaxID), "SELL", strings.Repeat("8", shopbridge.MaxID), ""),
		"X-Evotor-Device-Uuid", strings.Repeat("d", shopbridge.MaxID)); a.status != 200 {
		t.Errorf("receipt at the limits: %d %s", a.status, a.body)
	}
	// No log line carries a client's long text.
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 1024 {
			t.Errorf("a %d-byte log line: %.200s", len(line), line)
		}
	}
}

// TestDuplicateKeysAndBadIDs: a receipt one decoder reads as another
// receipt than the next (issue 16.12).
func TestDuplicateKeysAndBadIDs(t *testing.T) {
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	for _, c := range []struct{ name, body, subject string }{
		{"id twice", `{"id":"ev-a","id":"ev-b","data":{}}`, "id"},
		{"id twice, one escaped", `{"id":"ev-a","\u0069d":"ev-b","data":{}}`, "id"},
		{"data twice", `{"id":"ev-a","data":{"type":"SELL"},"data":{"type":"PAYBACK"}}`, "data"},
		{"another top-level key twice", `{"id":"ev-a","type":"x","data":{},"type":"y"}`, "type"},
		{"billId twice", `{"id":"ev-a","data":{"type":"SELL","extras":{"billId":"49024","billId":"49020"}}}`, "data.extras.billId"},
		{"settlementMethod twice", `{"id":"ev-a","data":{"type":"SELL","extras":{"billId":"49024","settlementMethod":"FullPrepayment","settlementMethod":"FullSettlement"}}}`, "data.extras.settlementMethod"},
		{"data.type twice", `{"id":"ev-a","data":{"type":"PAYBACK","type":"SELL"}}`, "data.type"},
		{"extras twice", `{"id":"ev-a","data":{"extras":{"billId":"1"},"extras":{"billId":"2"}}}`, "data.extras"},
		{"id with NUL", `{"id":"ev-\u0000a","data":{}}`, "id"},
		{"id with a lone high surrogate", `{"id":"ev-\ud83d","data":{}}`, "id"},
		{"id with a lone low surrogate", `{"id":"ev-\ude00x","data":{}}`, "id"},
		{"id with two high surrogates", `{"id":"\ud83d\ud83d","data":{}}`, "id"},
		{"billId with NUL", `{"id":"ev-a","data":{"extras":{"billId":"49024\u0000"}}}`, "data.extras.billId"},
		{"raw invalid UTF-8 in the id", "{\"id\":\"ev-\xed\xa0\x80\",\"data\":{}}", "body"},
		{"raw invalid UTF-8 byte", "{\"id\":\"ev-\xff\",\"data\":{}}", "body"},
	} {
		wantError(t, c.name, ts.post(t, "/api/v2/receipts", c.body), 400, api.CodeSyntax, c.subject)
	}
	if ts.store.OutboxLen() != 0 {
		t.Errorf("outbox: %d", ts.store.OutboxLen())
	}
	// Kept: a surrogate pair, duplicates of keys shopbridge does not read
	// inside data (they pass to the upstream as they are), and one key
	// in two different objects.
	for _, body := range []string{
		`{"id":"ev-\ud83d\ude00","data":{}}`,
		`{"id":"ev-dup-inside","data":{"items":[1],"items":[2],"extras":{"note":"a","note":"b"}}}`,
		`{"id":"ev-nested","data":{"id":"x","data":{"id":"y"}}}`,
	} {
		if a := ts.post(t, "/api/v2/receipts", body); a.status != 200 {
			t.Errorf("%s: %d %s", body, a.status, a.body)
		}
	}
}
