package api

import (
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

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

var (
	requestsTotal    = shopbridge.Metric{Name: "shopbridge_requests_total", Type: "counter", Help: "Terminal requests by kind and status."}
	requestDuration  = shopbridge.Metric{Name: "shopbridge_request_duration_seconds", Type: "histogram", Help: "Terminal request latency by kind and status."}
	receiptsAccepted = shopbridge.Metric{Name: "shopbridge_receipts_accepted_total", Type: "counter", Help: "Receipts accepted (durable), duplicates excluded."}
	outboxReceipts   = shopbridge.Metric{Name: "shopbridge_outbox_receipts", Type: "gauge", Help: "Receipts waiting for the upstream."}
	storeCommits     = shopbridge.Metric{Name: "shopbridge_store_commits_total", Type: "counter", Help: "Write transactions committed (each one round of fsyncs)."}
	storeFailed      = shopbridge.Metric{Name: "shopbridge_store_failed_commits_total", Type: "counter", Help: "Write transactions that failed at the disk (full, read-only, I/O error)."}
	storeDegraded    = shopbridge.Metric{Name: "shopbridge_store_degraded", Type: "gauge", Help: "1 for the reason the store cannot write while it cannot, else 0."}
)

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
	requestsTotal.Header(w)
	for _, k := range keys {
		requestsTotal.Sample(w, "", float64(all[k].count.Load()), "kind", k.kind, "status", strconv.Itoa(k.status))
	}
	requestDuration.Header(w)
	for _, k := range keys {
		s, status := all[k], strconv.Itoa(k.status)
		var cum uint64
		for i, b := range buckets {
			cum += s.bucket[i].Load()
			requestDuration.Sample(w, "_bucket", float64(cum), "kind", k.kind, "status", status, "le", strconv.FormatFloat(b, 'g', -1, 64))
		}
		cum += s.bucket[len(buckets)].Load()
		requestDuration.Sample(w, "_bucket", float64(cum), "kind", k.kind, "status", status, "le", "+Inf")
		requestDuration.Sample(w, "_sum", float64(s.sumNS.Load())/1e9, "kind", k.kind, "status", status)
		requestDuration.Sample(w, "_count", float64(s.count.Load()), "kind", k.kind, "status", status)
	}
	receiptsAccepted.Write(w, float64(m.receiptsAccepted.Load()))
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
	outboxReceipts.Write(w, float64(s.cfg.Store.OutboxLen()))
	storeCommits.Write(w, float64(s.cfg.Store.Commits()))
	h := s.cfg.Store.Health()
	storeFailed.Write(w, float64(h.FailedCommits))
	degraded := make([]float64, len(storage.Faults))
	for i, f := range storage.Faults {
		if h.State == storage.StateDegraded && h.Reason == f {
			degraded[i] = 1
		}
	}
	storeDegraded.WriteLabelled(w, "reason", storage.Faults, degraded)
	for _, m := range s.cfg.Metrics {
		m.WriteMetrics(w)
	}
	return nil
}
