package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

func parseQuery(q string) (url.Values, error) { return url.ParseQuery(q) }
func urlUnescape(q string) (string, error)    { return url.QueryUnescape(q) }

// JournalRow is one journal entry as admin/api/journal shows it: bodies that
// are JSON stay JSON, anything else is a string.
type JournalRow struct {
	Seq        uint64          `json:"seq"`
	Time       time.Time       `json:"time"`
	Client     string          `json:"client"`
	Device     string          `json:"device,omitempty"`
	Kind       string          `json:"kind"`
	Method     string          `json:"method,omitempty"`
	Path       string          `json:"path,omitempty"`
	Query      string          `json:"query,omitempty"`
	Request    json.RawMessage `json:"request,omitempty"`
	Status     int             `json:"status,omitempty"`
	Response   json.RawMessage `json:"response,omitempty"`
	DurationMS float64         `json:"duration_ms"`
	Source     string          `json:"source,omitempty"`
	Note       string          `json:"note,omitempty"`
}

func rawOrString(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// ParseJournalQuery reads since (a duration such as 1h or an RFC 3339 time),
// kind and limit.
func ParseJournalQuery(raw string, now time.Time) (storage.JournalQuery, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return storage.JournalQuery{}, shopbridge.Errorf(shopbridge.EINVALID, "query", "bad query string: %v", err)
	}
	var jq storage.JournalQuery
	if v := q.Get("since"); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			jq.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339, v); err == nil {
			jq.Since = t
		} else {
			return jq, shopbridge.Errorf(shopbridge.EVALUE, "since", "since must be a duration like 1h or an RFC 3339 time, not %q", v)
		}
	}
	jq.Kind = strings.ToUpper(q.Get("kind"))
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return jq, shopbridge.Errorf(shopbridge.EVALUE, "limit", "limit must be 1..100000, not %q", v)
		}
		jq.Limit = n
	}
	return jq, nil
}

func (s *Server) journal(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	jq, err := ParseJournalQuery(r.URL.RawQuery, s.cfg.Now())
	if err != nil {
		s.fail(w, err)
		return
	}
	entries, err := s.cfg.Store.Journal(jq)
	if err != nil {
		s.fail(w, err)
		return
	}
	rows := make([]JournalRow, len(entries))
	for i, e := range entries {
		rows[i] = JournalRow{Seq: e.Seq, Time: e.Time, Client: e.Client, Device: e.Device, Kind: e.Kind,
			Method: e.Method, Path: e.Path, Query: e.Query, Request: rawOrString(e.ReqBody), Status: e.Status,
			Response: rawOrString(e.RespBody), DurationMS: float64(e.Duration) / 1e6, Source: e.Source, Note: e.Note}
	}
	body, err := json.Marshal(rows)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// Latency histogram bounds in seconds.
var buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

type series struct {
	count  atomic.Uint64
	sumNS  atomic.Uint64
	bucket [13]atomic.Uint64
}

type seriesKey struct {
	kind   string
	status int
}

type metrics struct {
	// series is copied on write: every request reads it, a new kind and
	// status pair is rare, and a reader lock shared by all requests costs
	// more than the counting.
	series           atomic.Pointer[map[seriesKey]*series]
	mu               sync.Mutex // serializes writers of series
	receiptsAccepted atomic.Uint64
}

func newMetrics() *metrics {
	m := &metrics{}
	m.series.Store(&map[seriesKey]*series{})
	return m
}

func (m *metrics) observe(kind string, status int, d time.Duration) {
	k := seriesKey{kind, status}
	s := (*m.series.Load())[k]
	if s == nil {
		m.mu.Lock()
		old := *m.series.Load()
		if s = old[k]; s == nil {
			next := make(map[seriesKey]*series, len(old)+1)
			for k, v := range old {
				next[k] = v
			}
			s = &series{}
			next[k] = s
			m.series.Store(&next)
		}
		m.mu.Unlock()
	}
	s.count.Add(1)
	s.sumNS.Add(uint64(d))
	i := sort.SearchFloat64s(buckets, d.Seconds())
	s.bucket[i].Add(1)
}

func (m *metrics) write(w io.Writer) {
	all := *m.series.Load()
	keys := make([]seriesKey, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].kind != keys[j].kind {
			return keys[i].kind < keys[j].kind
		}
		return keys[i].status < keys[j].status
	})
	fmt.Fprintln(w, "# HELP shopbridge_requests_total Terminal requests by kind and status.")
	fmt.Fprintln(w, "# TYPE shopbridge_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "shopbridge_requests_total{kind=%q,status=\"%d\"} %d\n", k.kind, k.status, all[k].count.Load())
	}
	fmt.Fprintln(w, "# HELP shopbridge_request_duration_seconds Terminal request latency by kind and status.")
	fmt.Fprintln(w, "# TYPE shopbridge_request_duration_seconds histogram")
	for _, k := range keys {
		s := all[k]
		var cum uint64
		for i, b := range buckets {
			cum += s.bucket[i].Load()
			fmt.Fprintf(w, "shopbridge_request_duration_seconds_bucket{kind=%q,status=\"%d\",le=\"%g\"} %d\n", k.kind, k.status, b, cum)
		}
		cum += s.bucket[len(buckets)].Load()
		fmt.Fprintf(w, "shopbridge_request_duration_seconds_bucket{kind=%q,status=\"%d\",le=\"+Inf\"} %d\n", k.kind, k.status, cum)
		fmt.Fprintf(w, "shopbridge_request_duration_seconds_sum{kind=%q,status=\"%d\"} %g\n", k.kind, k.status, float64(s.sumNS.Load())/1e9)
		fmt.Fprintf(w, "shopbridge_request_duration_seconds_count{kind=%q,status=\"%d\"} %d\n", k.kind, k.status, s.count.Load())
	}
	fmt.Fprintln(w, "# HELP shopbridge_receipts_accepted_total Receipts accepted (durable), duplicates excluded.")
	fmt.Fprintln(w, "# TYPE shopbridge_receipts_accepted_total counter")
	fmt.Fprintf(w, "shopbridge_receipts_accepted_total %d\n", m.receiptsAccepted.Load())
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
	fmt.Fprintln(w, "# HELP shopbridge_outbox_receipts Receipts waiting for the upstream.")
	fmt.Fprintln(w, "# TYPE shopbridge_outbox_receipts gauge")
	fmt.Fprintf(w, "shopbridge_outbox_receipts %d\n", s.cfg.Store.OutboxLen())
	fmt.Fprintln(w, "# HELP shopbridge_store_commits_total Write transactions committed (each one round of fsyncs).")
	fmt.Fprintln(w, "# TYPE shopbridge_store_commits_total counter")
	fmt.Fprintf(w, "shopbridge_store_commits_total %d\n", s.cfg.Store.Commits())
	for _, m := range s.cfg.Metrics {
		m.WriteMetrics(w)
	}
}
