package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/fulldisk"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/storage"
)

// evotorBody parses an Evotor error body; ok is false for anything else.
func evotorBody(b []byte) (code int, reason, subject string, ok bool) {
	var e struct {
		Errors []struct {
			Code    int    `json:"code"`
			Reason  string `json:"reason"`
			Subject string `json:"subject"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &e) != nil || len(e.Errors) != 1 {
		return 0, "", "", false
	}
	return e.Errors[0].Code, e.Errors[0].Reason, e.Errors[0].Subject, e.Errors[0].Reason != ""
}

// TestFullDiskThroughDaemon: the daemon's data directory on a real 4 MiB
// tmpfs that fills up. Receipts get 503 3001 with the Evotor body, healthz,
// metrics and status say the store is degraded, the log says "disk full"
// once; when the space comes back it recovers by itself, and every receipt
// acknowledged before is in the outbox.
func TestFullDiskThroughDaemon(t *testing.T) {
	data := fulldisk.Mount(t, "4m")
	p := startDaemon(t, data, nil)
	calls := 0 // terminal calls, each a journal entry
	post := func(id string) (int, []byte) {
		calls++
		body := receiptBody(id, "", "SELL", "")
		body = []byte(strings.Replace(string(body), `"data":{`, `"data":{"pad":"`+strings.Repeat("x", 3000)+`",`, 1))
		code, b, _ := do(t, "POST", p.Base+"/api/v2/receipts", body, map[string]string{"X-Evotor-Device-UUID": "reg-1"})
		return code, b
	}
	var acked []string
	for i := range 20 {
		id := fmt.Sprintf("before-%d", i)
		if code, b := post(id); code != 200 {
			t.Fatalf("receipt %s before the disk filled: %d %s", id, code, b)
		}
		acked = append(acked, id)
	}
	filler := fulldisk.Fill(t, data)

	var status int
	var body []byte
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("full-%d", i)
		if status, body = post(id); status != 200 {
			break
		}
		acked = append(acked, id)
	}
	if status != 503 {
		t.Fatalf("a receipt on a full disk: %d %s, want 503", status, body)
	}
	if code, reason, subject, ok := evotorBody(body); !ok || code != api.CodeUnavailable || subject != "store" ||
		!strings.Contains(reason, "disk full") || strings.Contains(reason, data) {
		t.Errorf("503 body %s: want code 3001, subject store, the reason without the path", body)
	}
	for i := range 20 {
		if status, body = post(fmt.Sprintf("more-%d", i)); status != 503 {
			t.Fatalf("receipt %d more on a full disk: %d %s", i, status, body)
		}
	}
	// Reads go on.
	calls++
	if code, b, _ := do(t, "GET", p.Base+"/api/v2/list", nil, nil); code != 200 {
		t.Errorf("list on a full disk: %d %s", code, b)
	}
	if code, b, _ := do(t, "GET", p.Base+"/healthz", nil, nil); code != 503 || !strings.Contains(string(b), "store degraded: disk full") {
		t.Errorf("healthz on a full disk: %d %q", code, b)
	}
	_, metrics, _ := do(t, "GET", p.Base+"/metrics", nil, nil)
	for _, want := range []string{`shopbridge_store_degraded{reason="disk full"} 1`, `shopbridge_store_degraded{reason="I/O error"} 0`} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(metrics), "shopbridge_store_failed_commits_total 0\n") {
		t.Error("metrics count no failed commit")
	}
	var st struct {
		StoreHealth storage.Health `json:"store_health"`
	}
	_, b, _ := do(t, "GET", p.Base+"/admin/api/status", nil, nil)
	if err := json.Unmarshal(b, &st); err != nil || st.StoreHealth.State != "degraded" || st.StoreHealth.Reason != "disk full" || st.StoreHealth.FailedCommits < 21 {
		t.Errorf("status store_health = %+v (%v)", st.StoreHealth, err)
	}
	var ov struct {
		Store struct{ State, Reason string } `json:"store"`
	}
	_, b, _ = do(t, "GET", p.Base+"/admin/api/overview", nil, nil)
	if err := json.Unmarshal(b, &ov); err != nil || ov.Store.State != "degraded" || ov.Store.Reason != "disk full" {
		t.Errorf("the console's overview store = %+v (%v): %s", ov.Store, err, b)
	}
	// Whatever the journal writer says of the full disk is in the log
	// once it has taken every entry of these calls.
	journalFlushed(t, p, calls)
	logs := p.Logs()
	if n := linesWith(logs, "disk full"); n != 1 {
		t.Errorf("%d log lines say disk full, want one:\n%s", n, logs)
	}
	if n := strings.Count(logs, "level=ERROR"); n != 1 {
		t.Errorf("%d error lines in the log, want the one:\n%s", n, logs)
	}

	// Space back, no register posting: it recovers by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "healthz ok after the space came back", 10*storage.ProbeEvery, func() bool {
		code, b, _ := do(t, "GET", p.Base+"/healthz", nil, nil)
		return code == 200 && string(b) == "ok"
	})
	if n := linesWith(p.Logs(), "disk space back"); n != 1 {
		t.Errorf("the log says the space is back %d times, want once:\n%s", n, p.Logs())
	}
	if code, b := post("after"); code != 200 {
		t.Fatalf("a receipt after recovery: %d %s", code, b)
	}
	acked = append(acked, "after")
	_, metrics, _ = do(t, "GET", p.Base+"/metrics", nil, nil)
	if !strings.Contains(string(metrics), `shopbridge_store_degraded{reason="disk full"} 0`+"\n") {
		t.Errorf("metrics still degraded after recovery")
	}
	_, b, _ = do(t, "GET", p.Base+"/admin/api/overview", nil, nil)
	if err := json.Unmarshal(b, &ov); err != nil || ov.Store.State != "ok" {
		t.Errorf("the console's overview store after recovery = %+v (%v)", ov.Store, err)
	}
	p.Stop(t)

	path := filepath.Join(data, storage.FileName)
	if err := storage.CheckFile(path); err != nil {
		t.Fatalf("store check after the full disk: %v", err)
	}
	s, err := storage.Open(path, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Outbox(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]bool{}
	for _, r := range out {
		in[r.EventID] = true
	}
	for _, id := range acked {
		if !in[id] {
			t.Errorf("receipt %s was answered 200 but is not in the outbox", id)
		}
	}
	t.Logf("%d receipts acknowledged, all in the outbox; %d failed commits counted", len(acked), st.StoreHealth.FailedCommits)
}

func linesWith(logs, s string) (n int) {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// rawAnswer sends raw bytes on a new connection and reads one answer.
func rawAnswer(t *testing.T, addr, req string) (*http.Response, []byte, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(40 * time.Second))
	start := time.Now()
	go io.WriteString(c, req) // a large request may still be sending when the answer comes
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", req, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, b, time.Since(start)
}

// TestMalformedRequestsGetEvotorBody: requests net/http refuses before any
// handler, or that break the limits, get the Evotor body; raw bytes on TCP.
func TestMalformedRequestsGetEvotorBody(t *testing.T) {
	p := startDaemon(t, t.TempDir(), nil)
	addr := strings.TrimPrefix(p.Base, "http://")
	receipt := string(receiptBody("raw-1", "", "SELL", ""))
	cases := []struct {
		name    string
		req     string
		status  int
		code    int
		subject string
	}{
		{"70 kB URL", "GET /api/v2/bill/byid/" + strings.Repeat("1", 70000) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, api.CodeURITooLong, "url"},
		{"100 kB header", "GET /api/v2/hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 100000) + "\r\n\r\n", 431, api.CodeHeaders, "header"},
		{"2 MB header, over net/http's own limit", "GET /api/v2/hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 2<<20) + "\r\n\r\n", 431, api.CodeHeaders, "header"},
		{"garbage request line", "hello there\r\n\r\n", 400, api.CodeSyntax, "request"},
		{"space in the target", "GET /api/v2/list?x=a b c HTTP/1.1\r\nHost: x\r\n\r\n", 400, api.CodeSyntax, "request"},
		{"no Host", "GET /api/v2/hello HTTP/1.1\r\n\r\n", 400, api.CodeSyntax, "Host"},
		{"two Hosts", "GET /api/v2/hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, api.CodeSyntax, "request"},
		{"header without a colon", "GET /api/v2/hello HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n", 400, api.CodeSyntax, "request"},
		{"bad header name", "GET /api/v2/hello HTTP/1.1\r\nHost: x\r\nBad\x01Name: y\r\n\r\n", 400, api.CodeSyntax, "request"},
		{"bad Content-Length", "POST /api/v2/receipts HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n", 400, api.CodeSyntax, "request"},
		// net/http reads it as chunked (RFC 9112 6.3 allows that) and
		// drops the Content-Length: the empty chunked body is the fault.
		{"Content-Length and chunked", "POST /api/v2/receipts HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, api.CodeSyntax, "body"},
		{"unknown Transfer-Encoding", "POST /api/v2/receipts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, api.CodeEncoding, "Transfer-Encoding"},
		{"HTTP/2.0 request line", "GET /api/v2/hello HTTP/2.0\r\nHost: x\r\n\r\n", 505, api.CodeVersion, "request"},
		{"HTTP/3", "GET /api/v2/hello HTTP/3.0\r\nHost: x\r\n\r\n", 505, api.CodeVersion, "request"},
		{"Expect other than 100-continue", "POST /api/v2/receipts HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}", 417, api.CodeExpect, "Expect"},
		{"Expect in HTTP/1.0", "POST /api/v2/receipts HTTP/1.0\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}", 417, api.CodeExpect, "Expect"},
		{"bad chunk size", "POST /api/v2/receipts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + receipt + "\r\n0\r\n\r\n", 400, api.CodeSyntax, "body"},
		{"body cut, then the client half-closes", "", 400, api.CodeSyntax, "body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var resp *http.Response
			var b []byte
			if c.req == "" { // half-close: only raw TCP can
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(40 * time.Second))
				io.WriteString(conn, "POST /api/v2/receipts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"+receipt[:10])
				conn.(*net.TCPConn).CloseWrite()
				resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ = io.ReadAll(resp.Body)
			} else {
				resp, b, _ = rawAnswer(t, addr, c.req)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d (body %q)", resp.StatusCode, c.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			code, reason, subject, ok := evotorBody(b)
			if !ok || code != c.code || subject != c.subject {
				t.Errorf("body %s: want code %d subject %q", b, c.code, c.subject)
			}
			if strings.Contains(reason, "127.0.0.1") || strings.Contains(reason, "tcp") {
				t.Errorf("the reason %q leaks the socket", reason)
			}
			if c.req == "" && !strings.Contains(reason, "got 10 of 100 bytes") {
				t.Errorf("reason %q does not say how much of the body came", reason)
			}
			t.Logf("%d %s", resp.StatusCode, b)
		})
	}

	// The second request on a kept-alive connection gets the body too.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	io.WriteString(conn, "GET /api/v2/hello HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("hello: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	io.WriteString(conn, "GET /api/v2/hello HTTP/1.1\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if code, _, subject, ok := evotorBody(b); resp.StatusCode != 400 || !ok || code != api.CodeSyntax || subject != "Host" {
		t.Errorf("second request without Host: %d %s", resp.StatusCode, b)
	}
}

// TestShortBody: a receipt whose body stops short of its Content-Length is
// answered 400 within the body deadline (api.BodyTime), not held until the
// server's 30 s ReadTimeout, and the reason names the body, not the socket.
func TestShortBody(t *testing.T) {
	p := startDaemon(t, t.TempDir(), nil)
	addr := strings.TrimPrefix(p.Base, "http://")
	body := string(receiptBody("short-1", "", "SELL", ""))
	resp, b, took := rawAnswer(t, addr, "POST /api/v2/receipts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"+body[:10])
	code, reason, subject, ok := evotorBody(b)
	if resp.StatusCode != 400 || !ok || code != api.CodeSyntax || subject != "body" {
		t.Errorf("short body: %d %s, want 400 2001 about the body", resp.StatusCode, b)
	}
	if !strings.Contains(reason, "got 10 of 100 bytes") {
		t.Errorf("reason %q does not say how much came", reason)
	}
	for _, leak := range []string{"tcp", "127.0.0.1", "i/o timeout", addr} {
		if strings.Contains(reason, leak) {
			t.Errorf("reason %q leaks %q", reason, leak)
		}
	}
	// Generous: the point is that the 30 s ReadTimeout did not decide.
	if took >= 20*time.Second {
		t.Errorf("the answer took %s", took)
	}
	t.Logf("answered in %s: %s", took.Round(time.Millisecond), b)
}

// TestEmptyStoreAtStart: a zero-length shopbridge.db beside the marker of an
// earlier store is refused at start with one line and exit 1; in a new data
// directory it becomes a new store.
func TestEmptyStoreAtStart(t *testing.T) {
	data := t.TempDir()
	db := filepath.Join(data, storage.FileName)
	for _, f := range []string{db, filepath.Join(data, storage.MarkerName)} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(binary, "run", "--listen", "127.0.0.1:0", "--data", data, "--mdns=false")
	cmd.Env = append(os.Environ(), "SHOPBRIDGE_CONFIG=")
	out, err := cmd.CombinedOutput()
	ee, isExit := err.(*exec.ExitError)
	if !isExit || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; output %q", err, out)
	}
	want := "store " + db + " is empty (0 bytes): it was probably cut short by a crash or a full disk; " +
		"restore a backup over it (see README: Backup and restore) or, on a new install, delete it"
	if line := strings.TrimSpace(string(out)); !strings.Contains(line, want) || strings.Contains(line, "\n") {
		t.Errorf("output %q, want one line saying %q", out, want)
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
		t.Errorf("the refused store was touched: %v %v", fi, err)
	}

	// A new install: nothing but the empty file.
	fresh := t.TempDir()
	if err := os.WriteFile(filepath.Join(fresh, storage.FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, fresh, nil)
	if code, _, _ := do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("fresh-1", "", "SELL", ""), nil); code != 200 {
		t.Errorf("receipt on a store made from an empty file in a new directory: %d", code)
	}
	p.Stop(t)
	if _, err := os.Stat(filepath.Join(fresh, storage.MarkerName)); err != nil {
		t.Errorf("no marker after the first start: %v", err)
	}
}
