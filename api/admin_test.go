package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/storetest"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

func TestAdminLoopback(t *testing.T) {
	ts := newServer(t, api.Config{Status: func() api.Status { return api.Status{Version: "test", Outbox: 1} }})
	seed(t, ts.store)
	ts.post(t, "/api/v2/receipts", receiptBody("ev-1", "SELL", "49024", ""))

	a := ts.get(t, "/admin/api/status")
	var st map[string]any
	if a.status != 200 || json.Unmarshal(a.body, &st) != nil || st["version"] != "test" {
		t.Errorf("status = %d %s", a.status, a.body)
	}

	if err := ts.store.AppendJournal([]shopbridge.JournalEntry{
		{Time: time.Now().Add(-2 * time.Hour), Kind: "LIST", Status: 200, RespBody: []byte(`[]`)},
		{Time: time.Now(), Kind: "BILL", Status: 404, RespBody: []byte(`not json`), ReqBody: []byte(`{"a":1}`)},
	}); err != nil {
		t.Fatal(err)
	}
	a = ts.get(t, "/admin/api/journal?since=1h")
	var rows []api.JournalRow
	if err := json.Unmarshal(a.body, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("journal = %d %s (%v)", a.status, a.body, err)
	}
	if string(rows[0].Response) != `"not json"` || string(rows[0].Request) != `{"a":1}` || rows[0].Kind != "BILL" {
		t.Errorf("journal row = %+v", rows[0])
	}
	if a := ts.get(t, "/admin/api/journal?kind=list"); !strings.Contains(string(a.body), `"kind":"LIST"`) || strings.Contains(string(a.body), `"BILL"`) {
		t.Errorf("journal?kind=list = %s", a.body)
	}
	wantError(t, "bad since", ts.get(t, "/admin/api/journal?since=yesterday"), 400, api.CodeInvalidValue, "since")
	wantError(t, "bad limit", ts.get(t, "/admin/api/journal?limit=0"), 400, api.CodeInvalidValue, "limit")

	// Backup: a consistent store file with the same data.
	a = ts.get(t, "/admin/api/backup")
	if a.status != 200 || a.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("backup = %d %q", a.status, a.header.Get("Content-Type"))
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, a.body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := storage.CheckFile(path); err != nil {
		t.Fatalf("backup fails its check: %v", err)
	}
	b, err := storage.Open(path, storage.Options{ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := b.Receipt("ev-1"); err != nil || r.BillID != "49024" {
		t.Errorf("backup receipt: %v", err)
	}
	if sums, _ := b.List(storage.ListQuery{}); len(sums) != 3 {
		t.Errorf("backup list has %d bills, want 3", len(sums))
	}
	b.Close()

	// Retry of a parked receipt.
	wantError(t, "retry of a queued receipt", ts.post(t, "/admin/api/outbox/ev-1/retry", ""), 409, api.CodeConflict, "id")
	wantError(t, "retry of an unknown receipt", ts.post(t, "/admin/api/outbox/nope/retry", ""), 404, api.CodeNotFound, "id")
	if err := ts.store.Park("ev-1", "400 refused"); err != nil {
		t.Fatal(err)
	}
	if a := ts.post(t, "/admin/api/outbox/ev-1/retry", ""); a.status != 200 {
		t.Errorf("retry = %d %s", a.status, a.body)
	}
	if out, _ := ts.store.Outbox(0, 0); len(out) != 1 {
		t.Errorf("outbox after retry has %d", len(out))
	}
}

// TestAdminRemote calls the handler with crafted client addresses: httptest
// servers only listen on loopback.
func TestAdminRemote(t *testing.T) {
	s := storetest.MustOpen(t)
	call := func(h http.Handler, addr, path, auth string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = addr
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		return rec
	}
	check := func(name string, rec *httptest.ResponseRecorder, status, code int, subject string) {
		t.Helper()
		wantError(t, name, answer{rec.Code, rec.Header(), rec.Body.Bytes()}, status, code, subject)
	}
	paths := []string{"/metrics", "/admin/api/status", "/admin/api/journal", "/admin/api/backup"}

	noToken := api.New(api.Config{Hosts: testHosts, Store: s, Logger: quietLogger()})
	for _, p := range paths {
		check("LAN client, no admin token: "+p, call(noToken, "192.168.1.20:40000", p, ""), 403, api.CodeForbidden, "client")
		check("LAN client with a token nobody set: "+p, call(noToken, "192.168.1.20:40000", p, "Bearer x"), 403, api.CodeForbidden, "client")
		for _, lo := range []string{"127.0.0.1:1", "[::1]:1", "127.5.5.5:1"} {
			if rec := call(noToken, lo, p, ""); rec.Code != 200 {
				t.Errorf("%s from %s: %d", p, lo, rec.Code)
			}
		}
	}
	// Terminal calls from the LAN stay open.
	if rec := call(noToken, "192.168.1.20:40000", "/api/v2/list", ""); rec.Code != 200 {
		t.Errorf("list from the LAN: %d", rec.Code)
	}

	withToken := api.New(api.Config{Hosts: testHosts, Store: s, Logger: quietLogger(), AdminToken: "adm1n"})
	for _, p := range paths {
		check("no token: "+p, call(withToken, "192.168.1.20:40000", p, ""), 401, api.CodeUnauthorized, "Authorization")
		check("wrong token: "+p, call(withToken, "192.168.1.20:40000", p, "Bearer adm1"), 401, api.CodeUnauthorized, "Authorization")
		if rec := call(withToken, "192.168.1.20:40000", p, "Bearer adm1n"); rec.Code != 200 {
			t.Errorf("%s with the admin token: %d %s", p, rec.Code, rec.Body)
		}
		if rec := call(withToken, "127.0.0.1:1", p, ""); rec.Code != 200 {
			t.Errorf("%s from loopback with a token set: %d", p, rec.Code)
		}
	}
	// The allow list still comes first.
	check("public client with the admin token", call(withToken, "203.0.113.9:1", "/metrics", "Bearer adm1n"), 403, api.CodeForbidden, "client")
	// The terminal token is not the admin token.
	both := api.New(api.Config{Hosts: testHosts, Store: s, Logger: quietLogger(), AdminToken: "adm1n", TerminalToken: "term"})
	check("terminal token on admin", call(both, "192.168.1.20:1", "/admin/api/status", "Bearer term"), 401, api.CodeUnauthorized, "Authorization")
}

func TestParseJournalQuery(t *testing.T) {
	now := time.Date(2026, 3, 22, 21, 0, 0, 0, time.UTC)
	tests := []struct {
		raw   string
		want  storage.JournalQuery
		error string
	}{
		{raw: "", want: storage.JournalQuery{}},
		{raw: "since=1h&kind=bill&limit=50", want: storage.JournalQuery{Since: now.Add(-time.Hour), Kind: "BILL", Limit: 50}},
		{raw: "since=2026-03-22T20:00:00Z", want: storage.JournalQuery{Since: now.Add(-time.Hour)}},
		{raw: "since=-1h", error: "since"},
		{raw: "since=1d", error: "since"},
		{raw: "limit=abc", error: "limit"},
		{raw: "limit=100001", error: "limit"},
		{raw: "since=%zz", error: "query"},
	}
	for _, tt := range tests {
		got, err := api.ParseJournalQuery(tt.raw, now)
		if tt.error != "" {
			if shopbridge.ErrorSubject(err) != tt.error {
				t.Errorf("ParseJournalQuery(%q) = %v, want an error about %s", tt.raw, err, tt.error)
			}
			continue
		}
		if err != nil || !got.Since.Equal(tt.want.Since) || got.Kind != tt.want.Kind || got.Limit != tt.want.Limit {
			t.Errorf("ParseJournalQuery(%q) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
		}
	}
}

func TestParseListParams(t *testing.T) {
	tests := []struct {
		raw  string
		want api.ListParams
		kind string
	}{
		{raw: "", want: api.ListParams{}},
		{raw: "date=today", want: api.ListParams{Date: "today"}},
		{raw: "date=2024-02-29&number=A%2F1", want: api.ListParams{Date: "2024-02-29", Number: "A/1"}},
		{raw: "number=1&number=2", want: api.ListParams{Number: "1"}},
		{raw: "x=1&y", want: api.ListParams{}},
		{raw: "date=2025-02-29", kind: shopbridge.EVALUE},
		{raw: "date=Today", kind: shopbridge.EVALUE},
		{raw: "date=+2026-03-22", kind: shopbridge.EVALUE},
		{raw: "date=%", kind: shopbridge.EINVALID},
		{raw: "a=1;b=2&x=%zz&number=7", want: api.ListParams{Number: "7"}}, // unknown parameters, readable or not, are ignored
	}
	for _, tt := range tests {
		got, err := api.ParseListParams(tt.raw)
		if k := shopbridge.ErrorKind(err); k != tt.kind || (err == nil && got != tt.want) {
			t.Errorf("ParseListParams(%q) = %+v, %v; want %+v, kind %q", tt.raw, got, err, tt.want, tt.kind)
		}
	}
}

func FuzzParseListParams(f *testing.F) {
	for _, s := range []string{"", "date=today", "date=2026-03-22", "number=206929C", "date=2026-02-30", "date=%zz", "a=1;b", "number=%D0%98&date=today&x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := api.ParseListParams(raw)
		if err != nil {
			if k := shopbridge.ErrorKind(err); k != shopbridge.EINVALID && k != shopbridge.EVALUE {
				t.Fatalf("error of kind %q: %v", k, err)
			}
			return
		}
		if p.Date != "" && p.Date != "today" {
			d, err := time.Parse("2006-01-02", p.Date)
			if err != nil || d.Format("2006-01-02") != p.Date {
				t.Fatalf("accepted date %q", p.Date)
			}
		}
	})
}

// TestBackupOutlivesWriteTimeout: a store larger than what the server may
// write within its WriteTimeout still arrives whole when the client keeps
// reading, as `shopbridge backup` of a year's store over a slow disk does.
func TestBackupOutlivesWriteTimeout(t *testing.T) {
	st := storetest.MustOpen(t)
	body := bytes.Repeat([]byte("x"), shopbridge.MaxJournalBody)
	var es []shopbridge.JournalEntry
	for i := range 160 { // about 10 MB of distinct bodies
		b := append([]byte(fmt.Sprintf("%06d", i)), body[6:]...)
		es = append(es, shopbridge.JournalEntry{Time: time.Now(), Kind: "LIST", Status: 200, RespBody: b})
	}
	if err := st.AppendJournal(es); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Config{Store: st, Logger: quietLogger()}))
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/admin/api/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := resp.Body.Read(buf)
		f.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("backup cut after %d bytes and %v: %v", n, time.Since(start), err)
		}
		time.Sleep(10 * time.Millisecond) // a slow reader: the whole takes well over the WriteTimeout
	}
	f.Close()
	if elapsed := time.Since(start); elapsed < srv.Config.WriteTimeout {
		t.Skipf("the backup (%d bytes) arrived in %v, before the WriteTimeout: nothing tested", n, elapsed)
	}
	if err := storage.CheckFile(path); err != nil {
		t.Fatalf("backup of %d bytes read over %v fails its check: %v", n, time.Since(start), err)
	}
}
