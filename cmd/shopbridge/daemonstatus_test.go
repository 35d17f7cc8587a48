package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPrintDaemonStatus(t *testing.T) {
	now := time.Now()
	doc := map[string]any{
		"upstream": "offline", "upstream_url": "http://crm.example", "upstream_since": now.Add(-90 * time.Second),
		"last_pull_at": now.Add(-2 * time.Minute), "last_push_at": nil, "last_error": "GET /api/v2/list: no answer within 5s", "last_error_at": now.Add(-10 * time.Second),
		"outbox": 3, "outbox_oldest": now.Add(-5 * time.Minute), "parked": 1,
		"parked_receipts": []map[string]any{{"event_id": "evt-9", "bill_id": "206929", "received_at": now.Add(-time.Hour),
			"attempts": 2, "answer": "HTTP 400: {\"errors\":[{\"code\":2001,\"reason\":\"bad\"}]}"}},
		"https": map[string]any{"addr": "[::]:8443", "port": 8443, "fingerprint": "AB:CD", "source": "shop", "cert_file": "/etc/shop/c.pem",
			"not_after": now.Add(10 * 24 * time.Hour)},
	}
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		if r.URL.Path != "/admin/api/status" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(doc)
	}))
	defer srv.Close()
	t.Setenv("SHOPBRIDGE_ADMIN_TOKEN", "adm")
	var buf bytes.Buffer
	if err := printDaemonStatus(&buf, srv.URL+"/"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"upstream:   offline since", "(1m30s ago)", "http://crm.example", "last pull:", "(2m0s ago)",
		"last push:  never", "(10s ago), GET /api/v2/list: no answer within 5s", "outbox:     3 receipt(s) waiting", "(5m0s ago)",
		"parked:     1 receipt(s)", "evt-9  bill 206929",
		"https:      port 8443, certificate SHA-256 AB:CD\n", "shop, /etc/shop/c.pem, valid until", "EXPIRES in 9 day(s), renew it", "attempts 2", `answer: HTTP 400: {"errors"`, "shopbridge outbox retry"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if gotAuth != "Bearer adm" {
		t.Errorf("Authorization = %q, want the admin token", gotAuth)
	}

	// Back online: an error from before is not shown.
	doc["upstream"], doc["upstream_since"], doc["last_error_at"] = "online", now.Add(-5*time.Second), now.Add(-time.Minute)
	buf.Reset()
	if err := printDaemonStatus(&buf, srv.URL); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "last error") || !strings.Contains(buf.String(), "upstream:   online since") {
		t.Errorf("online again, the old error still shows:\n%s", buf.String())
	}

	if strings.Contains(buf.String(), "store:") {
		t.Errorf("a store that writes is reported:\n%s", buf.String())
	}
	doc["store_health"] = map[string]any{"state": "degraded", "reason": "disk full", "since": now.Add(-3 * time.Minute)}
	buf.Reset()
	if err := printDaemonStatus(&buf, srv.URL); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "store:      DEGRADED since") || !strings.Contains(buf.String(), "(3m0s ago): disk full; receipts get 503") {
		t.Errorf("a full disk is not the first line:\n%s", buf.String())
	}

	doc = map[string]any{"upstream": "none", "outbox": 0, "parked": 0, "parked_receipts": []any{}}
	buf.Reset()
	if err := printDaemonStatus(&buf, srv.URL); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "standalone") || !strings.Contains(buf.String(), "outbox:     empty") {
		t.Errorf("standalone status:\n%s", buf.String())
	}
	doc["outbox"] = 2
	buf.Reset()
	if err := printDaemonStatus(&buf, srv.URL); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "2 receipt(s) waiting") || !strings.Contains(buf.String(), "stay until an upstream is configured") {
		t.Errorf("standalone status with receipts waiting does not say they stay:\n%s", buf.String())
	}
	srv.Close()
	if err := printDaemonStatus(&buf, srv.URL); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable daemon: %v", err)
	}
}

func TestRetryParked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.EscapedPath() == "/admin/api/outbox/evt%2F1/retry":
			w.Write([]byte(`{"retried":true}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors":[{"code":2003,"reason":"no receipt with event id x","subject":"id"}]}`))
		}
	}))
	defer srv.Close()
	if err := retryParked(srv.URL, "evt/1"); err != nil {
		t.Errorf("retry: %v", err)
	}
	err := retryParked(srv.URL, "x")
	if err == nil || !strings.Contains(err.Error(), "no receipt with event id x") || !strings.Contains(err.Error(), "404") {
		t.Errorf("retry of an unknown receipt: %v", err)
	}
	if code := cmdOutbox(nil); code != 2 {
		t.Errorf("outbox without action: exit %d, want 2", code)
	}
	if code := cmdOutbox([]string{"retry"}); code != 2 {
		t.Errorf("retry without id: exit %d, want 2", code)
	}
	if code := cmdOutbox([]string{"retry", "a", "b"}); code != 2 {
		t.Errorf("retry with two ids: exit %d, want 2", code)
	}
	if code := cmdOutbox([]string{"retry", "evt/1", "--addr", srv.URL}); code != 0 {
		t.Errorf("retry ID --addr: exit %d", code)
	}
	if code := cmdOutbox([]string{"retry", "--addr", srv.URL, "x"}); code != 1 {
		t.Errorf("retry of unknown: exit %d, want 1", code)
	}
}

// TestPrintDaemonStatusClock: the clock line as the daemon's status gives
// it: a PC a year behind is WRONG with what it breaks, one a year ahead
// too, a right one says so, and without a measurement it says that.
func TestPrintDaemonStatusClock(t *testing.T) {
	now := time.Now()
	doc := map[string]any{"upstream": "online", "upstream_since": now.Add(-time.Hour), "outbox": 0, "parked": 0}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(doc) }))
	defer srv.Close()
	for _, tc := range []struct {
		name  string
		clock any
		want  string
	}{
		{"a year behind", map[string]any{"skew_seconds": 31536000, "measured_at": now.Add(-2 * time.Minute), "ok": false, "max_seconds": 120},
			"clock:      WRONG: this PC is 365 days behind the upstream (measured 2m0s ago); date=today lists"},
		{"a year ahead", map[string]any{"skew_seconds": -31536000, "measured_at": now.Add(-10 * time.Second), "ok": false, "max_seconds": 120},
			"clock:      WRONG: this PC is 365 days ahead of the upstream (measured 10s ago)"},
		{"ten minutes ahead", map[string]any{"skew_seconds": -600, "measured_at": now, "ok": false, "max_seconds": 120},
			"clock:      WRONG: this PC is 10 min ahead of the upstream"},
		{"right", map[string]any{"skew_seconds": 0, "measured_at": now.Add(-5 * time.Second), "ok": true, "max_seconds": 120},
			"clock:      in step with the upstream (measured 5s ago)"},
		{"a little behind", map[string]any{"skew_seconds": 40, "measured_at": now.Add(-5 * time.Second), "ok": true, "max_seconds": 120},
			"clock:      40 s behind the upstream (measured 5s ago)"},
		{"not measured", nil, "clock:      not measured yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc["clock"] = tc.clock
			var buf bytes.Buffer
			if err := printDaemonStatus(&buf, srv.URL); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), tc.want) {
				t.Errorf("status lacks %q:\n%s", tc.want, buf.String())
			}
			if n := strings.Count(buf.String(), "clock:"); n != 1 {
				t.Errorf("%d clock lines:\n%s", n, buf.String())
			}
		})
	}
	doc = map[string]any{"upstream": "none", "clock": nil}
	var buf bytes.Buffer
	if err := printDaemonStatus(&buf, srv.URL); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "clock:") {
		t.Errorf("a clock line without an upstream:\n%s", buf.String())
	}
}
