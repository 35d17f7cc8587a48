package crmsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shopbridge/shopbridge/internal/crmsimtest"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/poll"
)

// try does a GET with a client of the given timeout and reads the whole
// body; it returns the status, body and the first error.
func try(c *http.Client, url string) (int, []byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func setFault(t *testing.T, s *crmsim.Server, f crmsim.Fault) {
	t.Helper()
	if err := s.SetFault(f); err != nil {
		t.Fatal(err)
	}
}

func TestStatusFaults(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	c := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		fault      crmsim.Fault
		status     int
		code       int
		retryAfter string
	}{
		{crmsim.Fault{Mode: crmsim.Fault500}, 500, crmsim.CodeInternal, ""},
		{crmsim.Fault{Mode: crmsim.Fault429}, 429, crmsim.CodeRateLimited, "1"},
		{crmsim.Fault{Mode: crmsim.Fault429, RetryAfter: 3 * time.Second}, 429, crmsim.CodeRateLimited, "3"},
		{crmsim.Fault{Mode: crmsim.Fault503}, 503, crmsim.CodeUnavailable, ""},
		{crmsim.Fault{Mode: crmsim.Fault503, RetryAfter: 2 * time.Second}, 503, crmsim.CodeUnavailable, "2"},
		{crmsim.Fault{Mode: crmsim.Fault400}, 400, crmsim.CodeSyntax, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fault.Mode+"-"+tt.retryAfter, func(t *testing.T) {
			setFault(t, s, tt.fault)
			for _, path := range []string{"/api/v2/hello", "/api/v2/list", "/api/v2/bill/byid/49040"} {
				st, b, err := try(c, s.URL()+path)
				if err != nil || st != tt.status || evotorError(t, b) != tt.code {
					t.Errorf("%s = %d %s %v, want %d", path, st, b, err, tt.status)
				}
			}
			st, b, h := call(t, "POST", s.URL()+"/api/v2/receipts", []byte(`{"id":"r"}`), nil)
			if st != tt.status {
				t.Errorf("receipt = %d %s", st, b)
			}
			if got := h.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultNone})
	rs := s.Receipts()
	if len(rs) != len(tests) {
		t.Fatalf("%d receipts recorded, want %d", len(rs), len(tests))
	}
	for i, r := range rs {
		if r.Delivered || r.Fault != tests[i].fault.Mode || r.Status != tests[i].status {
			t.Errorf("receipt %d = %+v", i, r)
		}
	}
	if st, _, err := try(c, s.URL()+"/api/v2/hello"); err != nil || st != 200 {
		t.Fatalf("after clearing: %d %v", st, err)
	}
}

func TestFaultOneKind(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	c := &http.Client{Timeout: 10 * time.Second}
	setFault(t, s, crmsim.Fault{Mode: crmsim.Fault500, Kind: crmsim.KindReceipts})
	if st, _, err := try(c, s.URL()+"/api/v2/list"); err != nil || st != 200 {
		t.Fatalf("list with a receipts fault = %d %v", st, err)
	}
	if st, _, _ := call(t, "POST", s.URL()+"/api/v2/receipts", []byte(`{}`), nil); st != 500 {
		t.Fatalf("receipt = %d, want 500", st)
	}

	// refuse for one kind resets that kind's connections only.
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultRefuse, Kind: crmsim.KindList})
	if _, _, err := try(c, s.URL()+"/api/v2/list"); err == nil {
		t.Fatal("list with refuse/list got an answer")
	}
	if st, _, err := try(c, s.URL()+"/api/v2/hello"); err != nil || st != 200 {
		t.Fatalf("hello with refuse/list = %d %v", st, err)
	}
}

func TestMalformed(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultMalformed})
	for _, path := range []string{"/api/v2/hello", "/api/v2/list", "/api/v2/bill/byid/49040", "/api/v2/bill/byid/404"} {
		st, b := get(t, s.URL()+path)
		if st != 200 || json.Valid(b) || len(b) == 0 {
			t.Errorf("%s = %d %q, want 200 with invalid JSON", path, st, b)
		}
	}
}

func TestSlowAndLatency(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Latency: 30 * time.Millisecond})
	start := time.Now()
	get(t, s.URL()+"/api/v2/hello")
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("base latency 30ms, call took %v", d)
	}
	if err := s.SetLatency(0); err != nil {
		t.Fatal(err)
	}
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultSlow, Latency: 150 * time.Millisecond, Kind: crmsim.KindList})
	start = time.Now()
	st, _ := get(t, s.URL()+"/api/v2/list")
	if d := time.Since(start); st != 200 || d < 150*time.Millisecond {
		t.Fatalf("slow list = %d after %v, want 200 after >= 150ms", st, d)
	}
	// A client that gives up first sees a timeout.
	c := &http.Client{Timeout: 20 * time.Millisecond}
	if _, _, err := try(c, s.URL()+"/api/v2/list"); !isTimeout(err) {
		t.Fatalf("impatient client: %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestRefuse(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{Control: "127.0.0.1:0"})
	ctl := &crmsim.Control{URL: s.ControlURL()}
	c := &http.Client{Timeout: 5 * time.Second}
	// Keep an idle keep-alive connection open: it must not survive refuse.
	if st, _, err := try(c, s.URL()+"/api/v2/hello"); err != nil || st != 200 {
		t.Fatal(st, err)
	}
	if err := ctl.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := try(c, s.URL()+"/api/v2/hello"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("call %d while refused: %v, want connection refused", i, err)
		}
	}
	if _, err := net.Dial("tcp", s.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refused: %v", err)
	}
	if err := ctl.ClearFault(); err != nil {
		t.Fatal(err)
	}
	if st, _, err := try(c, s.URL()+"/api/v2/hello"); err != nil || st != 200 {
		t.Fatalf("after clearing refuse: %d %v", st, err)
	}
}

func TestHang(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultHang})
	c := &http.Client{Timeout: 100 * time.Millisecond}
	if _, _, err := try(c, s.URL()+"/api/v2/list"); !isTimeout(err) {
		t.Fatalf("hanging list: %v, want a client timeout", err)
	}

	// A hanging call is answered normally once the fault is cleared.
	s.ResetCounters()
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(s.URL()+"/api/v2/receipts", "application/json", strings.NewReader(`{"id":"h"}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = errors.New(resp.Status)
			}
		}
		done <- err
	}()
	poll.Eventually(t, "the receipt hanging", func() bool { rs := s.Receipts(); return len(rs) == 1 && rs[0].Fault == crmsim.FaultHang })
	select {
	case err := <-done:
		t.Fatalf("hanging receipt answered: %v", err)
	default:
	}
	setFault(t, s, crmsim.Fault{})
	if err := <-done; err != nil {
		t.Fatalf("released receipt: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.WaitReceipts(ctx, 1); err != nil {
		t.Fatalf("released receipt not delivered: %v", err)
	}
}

func TestCut(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultCut})
	c := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/api/v2/hello", "/api/v2/list", "/api/v2/bill/byid/49040"} {
		st, _, err := try(c, s.URL()+path)
		if st != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s = %d %v, want 200 then unexpected EOF", path, st, err)
		}
	}
	resp, err := c.Post(s.URL()+"/api/v2/receipts", "application/json", strings.NewReader(`{"id":"c"}`))
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut receipt: %v, want unexpected EOF", err)
	}
	if rs := s.Receipts(); len(rs) != 1 || rs[0].Delivered || rs[0].Fault != crmsim.FaultCut {
		t.Errorf("cut receipt recorded as %+v", rs)
	}
}

func TestHuge(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultHuge})
	c := &http.Client{Timeout: 60 * time.Second}
	for _, path := range []string{"/api/v2/list", "/api/v2/bill/byid/49040"} {
		resp, err := c.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		var head [16]byte
		io.ReadFull(resp.Body, head[:])
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		n += int64(len(head))
		if err != nil || resp.StatusCode != 200 || n < 50<<20 {
			t.Fatalf("%s: %d, %d bytes, %v; want 200 and >= 50 MiB", path, resp.StatusCode, n, err)
		}
		if path == "/api/v2/list" && !bytes.HasPrefix(head[:], []byte(`[{"id": `)) {
			t.Errorf("huge list starts %q", head)
		}
	}
	// A client that stops reading early does not stall the simulator.
	resp, err := c.Get(s.URL() + "/api/v2/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	setFault(t, s, crmsim.Fault{})
	if st, _ := get(t, s.URL()+"/api/v2/hello"); st != 200 {
		t.Fatal(st)
	}
}

func TestFlapping(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{})
	c := &http.Client{Timeout: 5 * time.Second}
	for _, mode := range []string{crmsim.Fault500, crmsim.FaultRefuse} {
		t.Run(mode, func(t *testing.T) {
			setFault(t, s, crmsim.Fault{Mode: mode, Flap: 20 * time.Millisecond})
			var ok, failed bool
			poll.Eventually(t, "both a good and a failed answer while flapping", func() bool {
				st, _, err := try(c, s.URL()+"/api/v2/hello")
				switch {
				case err == nil && st == 200:
					ok = true
				case mode == crmsim.FaultRefuse && errors.Is(err, syscall.ECONNREFUSED), mode == crmsim.Fault500 && st == 500:
					failed = true
				case err != nil:
					// a connection closed by the listener turning off mid-call
				default:
					t.Fatalf("unexpected answer %d", st)
				}
				return ok && failed
			})
			setFault(t, s, crmsim.Fault{})
			if st, _, err := try(c, s.URL()+"/api/v2/hello"); err != nil || st != 200 {
				t.Fatalf("after flapping: %d %v", st, err)
			}
		})
	}
}

func TestFaultJSON(t *testing.T) {
	f := crmsim.Fault{Mode: crmsim.FaultSlow, Kind: crmsim.KindBill, Latency: 2 * time.Second, Flap: 300 * time.Millisecond}
	b, err := json.Marshal(f)
	if err != nil || string(b) != `{"mode":"slow","kind":"bill","latency":"2s","flap":"300ms"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var g crmsim.Fault
	if err := json.Unmarshal(b, &g); err != nil || g != f {
		t.Fatalf("unmarshal = %+v, %v", g, err)
	}
	f = crmsim.Fault{Mode: crmsim.Fault429, RetryAfter: 3 * time.Second}
	if b, err = json.Marshal(f); err != nil || string(b) != `{"mode":"429","retry_after":"3s"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	if err := json.Unmarshal(b, &g); err != nil || g != f {
		t.Fatalf("unmarshal = %+v, %v", g, err)
	}
	for _, bad := range []crmsim.Fault{{Mode: "x"}, {Mode: "500", Kind: "x"}, {Mode: "slow", Latency: -1}, {Mode: "500", Flap: 1},
		{Mode: "429", RetryAfter: -time.Second}, {Mode: "503", RetryAfter: 1500 * time.Millisecond}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"mode":"slow","latency":"soon"}`), &g); err == nil || !strings.Contains(err.Error(), "latency") {
		t.Errorf("bad latency: %v", err)
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func drain(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}

// TestMaxConcurrent: with MaxConcurrent 2, of five calls at once two are
// served and three answered 429 without Retry-After after the base
// latency; a refused call does not hold a slot, and once the served ones
// end a new call is served.
func TestMaxConcurrent(t *testing.T) {
	s := crmsimtest.MustOpen(t, crmsim.Config{MaxConcurrent: 2, Latency: time.Second})
	setFault(t, s, crmsim.Fault{Mode: crmsim.FaultHang, Kind: crmsim.KindReceipts})
	type answer struct {
		status int
		body   []byte
		retry  string
	}
	answers := make(chan answer, 5)
	for i := range 5 {
		go func() {
			resp, err := httpClient.Post(s.URL()+"/api/v2/receipts", "application/json",
				strings.NewReader(fmt.Sprintf(`{"id": "mc-%d"}`, i)))
			if err != nil {
				answers <- answer{}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answers <- answer{resp.StatusCode, b, resp.Header.Get("Retry-After")}
		}()
	}
	// Three refusals come after the latency; the two served calls hang.
	for range 3 {
		a := <-answers
		if a.status != 429 || evotorError(t, a.body) != crmsim.CodeRateLimited || a.retry != "" {
			t.Errorf("over the limit: %d %s Retry-After %q, want 429 code 1003 without Retry-After", a.status, a.body, a.retry)
		}
	}
	if peak, refused := s.Concurrency(); peak != 5 || refused != 3 {
		t.Errorf("Concurrency() = %d, %d; want peak 5, 3 refused", peak, refused)
	}
	setFault(t, s, crmsim.Fault{})
	for range 2 {
		if a := <-answers; a.status != 200 {
			t.Errorf("served call: %d %s", a.status, a.body)
		}
	}
	if st, b := get(t, s.URL()+"/api/v2/hello"); st != 200 {
		t.Errorf("hello once the slots are free: %d %s", st, b)
	}
	refusedReceipts := 0
	for _, r := range s.Receipts() {
		if r.Fault == crmsim.FaultMaxConcurrent && r.Status == 429 && !r.Delivered {
			refusedReceipts++
			if r.Answered.Sub(r.Time) < time.Second {
				t.Errorf("refused receipt %s answered %v after it arrived, want after the 1 s latency", r.EventID, r.Answered.Sub(r.Time))
			}
		}
	}
	if refusedReceipts != 3 {
		t.Errorf("%d receipts recorded as refused for max-concurrent, want 3", refusedReceipts)
	}
	st := s.State()
	if st.MaxConcurrent != 2 || st.PeakCalls != 5 || st.Refused != 3 {
		t.Errorf("state = %+v", st)
	}
	if err := s.SetMaxConcurrent(-1); err == nil {
		t.Error("SetMaxConcurrent(-1) accepted")
	}
	s.ResetCounters()
	if err := s.SetMaxConcurrent(0); err != nil {
		t.Fatal(err)
	}
	if peak, refused := s.Concurrency(); peak != 0 || refused != 0 {
		t.Errorf("after ResetCounters: peak %d, %d refused", peak, refused)
	}
}
