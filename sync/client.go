package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
)

// Defaults and limits of the upstream client.
const (
	DefaultInterval = 10 * time.Second
	// DefaultInFlight is the cap of the adaptive push window: at 50 ms a
	// round trip, 10,000 receipts drain in under 10 s where the upstream
	// takes that many at once; one that takes fewer says so (limit.go).
	DefaultInFlight = 64
	DefaultTimeout  = 5 * time.Second // one upstream request, headers and body
	DefaultMaxBody  = 8 << 20         // the largest upstream answer read
	answerExcerpt   = 512             // the upstream's answer kept with a parked receipt
)

// client talks to the upstream CRM API. It trusts nothing it receives: every
// answer is size-capped and timed out, and journaled with its outcome.
type client struct {
	base    *url.URL // scheme://host[/prefix], no trailing slash
	token   string
	http    *http.Client
	timeout time.Duration
	maxBody int64
	journal shopbridge.Journal
	clock   *clockMeter // samples every answer's Date; nil: none
}

func newClient(rawURL, token string, timeout time.Duration, maxBody int64, conns int, j shopbridge.Journal) (*client, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("upstream URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q: want http:// or https:// and a host", rawURL)
	}
	u.RawQuery, u.Fragment = "", ""
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		MaxIdleConns:          conns + 4,
		MaxIdleConnsPerHost:   conns + 4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	return &client{
		base:    u,
		token:   token,
		http:    &http.Client{Transport: tr, CheckRedirect: noRedirect},
		timeout: timeout,
		maxBody: maxBody,
		journal: j,
	}, nil
}

// noRedirect keeps the bearer token from following a redirect elsewhere.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// redacted is the upstream URL fit for logs and status: no user info.
func (c *client) redacted() string { return c.base.Redacted() }

func (c *client) close() { c.http.CloseIdleConnections() }

// request is one upstream call.
type request struct {
	kind    string // journal kind
	method  string
	path    string // below the base URL, e.g. "/api/v2/list"
	query   url.Values
	body    []byte
	headers map[string]string // extra headers (X-Evotor-* of a receipt)
	device  string            // for the journal
	receipt string            // the body is this stored receipt's: the journal refers to it
	maxBody int64             // answer cap; 0 means the client's
}

// response is an upstream answer read in full (up to the cap).
type response struct {
	status int
	header http.Header
	body   []byte
	rtt    time.Duration // from having a connection to the end of the answer: the upstream's latency without dialing
}

// Failure classes of an upstream call.
var (
	errTooLarge  = errors.New("answer over the size cap")
	errMalformed = errors.New("malformed answer")
)

// do sends req and reads the whole answer, within the client's timeout and
// ctx. A transport failure, a timeout, a cut or oversized answer is an error;
// any HTTP status is a response. The exchange is journaled either way; the
// note of the entry is set by the caller's verdict through note.
func (c *client) do(ctx context.Context, req request) (*response, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + req.path
	u.RawPath = ""
	if c.base.RawPath != "" || strings.Contains(req.path, "%") {
		u.RawPath = c.base.EscapedPath() + req.path
	}
	u.RawQuery = req.query.Encode()
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	var gotConn time.Time
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn = time.Now() }})
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		return nil, 0, fmt.Errorf("build request %s %s: %w", req.method, req.path, err)
	}
	for k, v := range req.headers {
		hr.Header.Set(k, v)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "shopbridge/"+shopbridge.Version)
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	start := time.Now()
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, time.Since(start), fmt.Errorf("%s %s: %w", req.method, req.path, cleanErr(err, c.timeout))
	}
	defer resp.Body.Close()
	// Every answer, whatever its status, carries the upstream's clock.
	c.clock.observe(resp.Header.Get("Date"), later(gotConn, start), time.Now())
	limit := c.maxBody
	if req.maxBody > 0 {
		limit = req.maxBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	r := &response{status: resp.StatusCode, header: resp.Header, body: b, rtt: time.Since(later(gotConn, start))}
	if err != nil {
		return r, time.Since(start), fmt.Errorf("%s %s: status %d, reading the answer: %w", req.method, req.path, resp.StatusCode, cleanErr(err, c.timeout))
	}
	if int64(len(b)) > limit {
		return r, time.Since(start), fmt.Errorf("%s %s: %w (%d bytes)", req.method, req.path, errTooLarge, limit)
	}
	return r, time.Since(start), nil
}

// cleanErr shortens the errors of the HTTP client and names timeouts; it
// never carries the token (the URL has none: it goes in a header).
func cleanErr(err error, timeout time.Duration) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Errorf("no answer within %v: %w", timeout, context.DeadlineExceeded)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// record journals one exchange. Record never blocks (the Journal promises).
func (c *client) record(req request, resp *response, d time.Duration, note string) {
	if c.journal == nil {
		return
	}
	e := shopbridge.JournalEntry{
		Time:       time.Now(),
		Client:     "upstream",
		Device:     req.device,
		Kind:       req.kind,
		Method:     req.method,
		Path:       req.path,
		Query:      req.query.Encode(),
		ReqBody:    clip(req.body, shopbridge.MaxJournalBody),
		Duration:   d,
		ReqReceipt: req.receipt,
		Source:     "upstream",
		Note:       note,
	}
	if e.ReqReceipt != "" {
		e.ReqBody = nil
	}
	if resp != nil {
		e.Status = resp.status
		e.RespBody = clip(resp.body, shopbridge.MaxJournalBody)
	}
	c.journal.Record(e)
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		b = b[:n]
	}
	return bytes.Clone(b)
}

// excerpt is a short printable form of an upstream answer.
func excerpt(r *response) string {
	if r == nil {
		return ""
	}
	b := r.body
	more := ""
	if len(b) > answerExcerpt {
		b, more = b[:answerExcerpt], "…"
	}
	return fmt.Sprintf("HTTP %d: %s%s", r.status, strings.TrimSpace(strings.ToValidUTF8(string(b), "?")), more)
}

// answerOrError is a short account of an exchange for the log: the answer's
// excerpt, or the error when there was none.
func answerOrError(r *response, err error) string {
	if r != nil {
		return excerpt(r)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// retryable reports whether an HTTP status means "try again later".
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooEarly ||
		status == http.StatusTooManyRequests || status >= 500
}

// parseHello checks a hello answer and returns its system string. The
// answer must be a JSON object; system, when present, must be a string.
func parseHello(body []byte) (string, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil || v == nil {
		return "", fmt.Errorf("hello: %w: want a JSON object", errMalformed)
	}
	raw, ok := v["system"]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("hello: %w: system is %s, want a string", errMalformed, clip(raw, 64))
	}
	return s, nil
}

// parseList checks a list answer: a JSON array of summary objects. Elements
// that are not usable summaries (no id, not an object) are skipped and
// described in skipped; the array itself must be well-formed.
func parseList(body []byte) (sums []shopbridge.BillSummary, skipped []string, err error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, nil, fmt.Errorf("list: %w: want a JSON array: %v", errMalformed, err)
	}
	seen := make(map[string]bool, len(raws))
	sums = make([]shopbridge.BillSummary, 0, len(raws))
	for i, raw := range raws {
		s, err := shopbridge.ParseSummary(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("list[%d]: %v", i, err))
			continue
		}
		if seen[s.ID] {
			skipped = append(skipped, fmt.Sprintf("list[%d]: id %s listed twice", i, s.ID))
			continue
		}
		seen[s.ID] = true
		sums = append(sums, s)
	}
	return sums, skipped, nil
}

// checkBill checks a bill/byid answer for the bill asked for.
func checkBill(id string, body []byte) error {
	sum, err := shopbridge.ParseBill(body)
	if err != nil {
		return fmt.Errorf("bill %s: %w: %v", id, errMalformed, err)
	}
	if sum.ID != id {
		return fmt.Errorf("bill %s: %w: the answer is bill %s", id, errMalformed, sum.ID)
	}
	return nil
}
