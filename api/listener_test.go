package api_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/storetest"
)

// goError is net/http's own 400, as it writes it to the connection.
const goError = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"

// TestListenerPassesHandlersThrough: what handlers write reaches the client
// byte for byte through api.Listener, even bytes that hold net/http's own
// error answer: a backup of a store whose journal keeps one, and the journal
// itself.
func TestListenerPassesHandlersThrough(t *testing.T) {
	st := storetest.MustOpen(t)
	var es []shopbridge.JournalEntry
	for i := range 300 { // several pages, so the text lands at many offsets
		es = append(es, shopbridge.JournalEntry{Time: time.Now(), Client: "127.0.0.1", Kind: "RECEIPT", Method: "POST",
			Path: "/api/v2/receipts", ReqBody: bytes.Repeat([]byte(goError), 1+i%7), Status: 400})
	}
	if err := st.AppendJournal(es); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.New(api.Config{Store: st, Logger: quietLogger()}))
	srv.Listener = api.Listener(srv.Listener)
	srv.Config.MaxHeaderBytes = api.MaxHeaderBytes
	srv.Start()
	defer srv.Close()

	var want bytes.Buffer
	if _, err := st.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/admin/api/backup")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("backup through the listener: %d, %d bytes, equal %v; want the store's %d bytes",
			resp.StatusCode, len(got), bytes.Equal(got, want.Bytes()), want.Len())
	}
	if !bytes.Contains(want.Bytes(), []byte(goError)) {
		t.Fatal("the store does not hold the text: the test proves nothing")
	}

	resp, err = http.Get(srv.URL + "/admin/api/journal?limit=300")
	if err != nil {
		t.Fatal(err)
	}
	j, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || bytes.Count(j, []byte(`HTTP/1.1 400 Bad Request\r\nContent-Type`)) < 300 {
		t.Errorf("journal through the listener: %d, %d bytes", resp.StatusCode, len(j))
	}

	// And an Evotor error answer of a handler stays as it was.
	resp, err = http.Get(srv.URL + "/api/v2/bill/byid/42")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || string(b) != `{"errors":[{"code":2004,"reason":"no bill with id 42","subject":"id"}]}` {
		t.Errorf("404 through the listener: %d %s", resp.StatusCode, b)
	}
}

// TestRequestLimits: the handler's own limits on the URL and the headers,
// with the Evotor body, just past each limit and just within it.
func TestRequestLimits(t *testing.T) {
	ts := newServer(t, api.Config{})
	long := "/api/v2/bill/byid/" + strings.Repeat("1", api.MaxURL)
	wantError(t, "URL over the limit", ts.get(t, long), 414, api.CodeURITooLong, "url")
	wantError(t, "URL within the limit", ts.get(t, long[:api.MaxURL]), 404, api.CodeNotFound, "id")
	pad := strings.Repeat("p", api.MaxHeader)
	wantError(t, "headers over the limit", ts.get(t, "/api/v2/list", "X-Pad", pad), 431, api.CodeHeaders, "header")
	if a := ts.get(t, "/api/v2/list", "X-Pad", pad[:api.MaxHeader/2]); a.status != 200 {
		t.Errorf("headers within the limit: %d %s", a.status, a.body)
	}
}

// TestListenerKeepsTimeouts: the connections api.Listener returns coalesce
// their deadlines (deadline.go), and net/http's timeouts still end what
// they are for: headers that never finish, an answer nobody reads, and a
// kept-alive connection left idle; a client that keeps reading is served.
func TestListenerKeepsTimeouts(t *testing.T) {
	writeErr := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "ok")
			return
		}
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for range 256 { // far more than the sockets' buffers
			if _, err := w.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}))
	srv.Listener = api.Listener(srv.Listener)
	srv.Config.ReadHeaderTimeout = time.Second
	srv.Config.ReadTimeout = time.Second
	srv.Config.WriteTimeout = time.Second
	srv.Config.IdleTimeout = 2 * time.Second
	srv.Start()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	// Each bound is generous: it only says the connection did end.
	const bound = 30 * time.Second

	closed := func(name string, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(bound))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the server did not close the connection within %v", name, bound)
		}
	}

	// Headers begun and never finished.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /small HTTP/1.1\r\nHost: x\r\n")
	closed("unfinished headers", c)

	// An answer nobody reads: the handler's writes fail.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-writeErr:
		if err == nil {
			t.Error("256 MiB were written to a client that reads nothing")
		}
	case <-time.After(bound):
		t.Errorf("the handler's writes to a client that reads nothing did not fail within %v", bound)
	}

	// Many requests on one connection, each answered, then idle: closed.
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	br := bufio.NewReader(c3)
	for i := range 200 {
		io.WriteString(c3, "GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on a kept-alive connection: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	closed("an idle kept-alive connection", c3)
}
