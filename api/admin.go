package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// Status is the body of admin/api/status.
type Status struct {
	Version       string                `json:"version"`
	InstanceID    string                `json:"instance_id"`
	Name          string                `json:"name"`
	Addr          string                `json:"addr"`
	StartedAt     time.Time             `json:"started_at"`
	Upstream      string                `json:"upstream"`
	UpstreamURL   string                `json:"upstream_url,omitempty"`
	UpstreamSince *time.Time            `json:"upstream_since"`
	LastPullAt    *time.Time            `json:"last_pull_at"`
	LastPushAt    *time.Time            `json:"last_push_at"`
	LastError     string                `json:"last_error,omitempty"` // while the upstream fails; gone once it answers
	LastErrorAt   *time.Time            `json:"last_error_at,omitempty"`
	SyncedAt      *time.Time            `json:"synced_at"`
	System        string                `json:"system"`
	Bills         int                   `json:"bills"`
	OpenBills     int                   `json:"open_bills"`
	PaidTwice     []string              `json:"paid_twice"`
	Receipts      int                   `json:"receipts"`
	Outbox        int                   `json:"outbox"`
	OutboxOldest  *time.Time            `json:"outbox_oldest"`
	Parked        int                   `json:"parked"`
	ParkedList    []ParkedReceipt       `json:"parked_receipts"`
	Terminals     []storage.Terminal    `json:"terminals"`
	Journal       JournalStatus         `json:"journal"`
	Store         storage.Stats         `json:"store"`
	StoreHealth   storage.Health        `json:"store_health"`
	MDNS          shopbridge.MDNSStatus `json:"mdns"`
}

// ParkedReceipt is a receipt the upstream refused, for the operator.
type ParkedReceipt struct {
	EventID    string    `json:"event_id"`
	BillID     string    `json:"bill_id,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Attempts   int       `json:"attempts"`
	Answer     string    `json:"answer"`
}

// JournalStatus tells how the journal writer keeps up.
type JournalStatus struct {
	Written uint64  `json:"written"`
	Dropped uint64  `json:"dropped"`
	Queued  int     `json:"queued"`
	LagMS   float64 `json:"lag_ms"`
}

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

// NewJournalRow is a journal entry as admin/api/journal shows it (also used
// by shopbridge journal reading a stopped daemon's store).
func NewJournalRow(e shopbridge.JournalEntry) JournalRow {
	return JournalRow{Seq: e.Seq, Time: e.Time, Client: e.Client, Device: e.Device, Kind: e.Kind,
		Method: e.Method, Path: e.Path, Query: e.Query, Request: rawOrString(e.ReqBody), Status: e.Status,
		Response: rawOrString(e.RespBody), DurationMS: float64(e.Duration) / 1e6, Source: e.Source, Note: e.Note}
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
		rows[i] = NewJournalRow(e)
	}
	body, err := json.Marshal(rows)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// healthz is 200 ok while the store is open and can write; 503 with the
// reason otherwise ("store degraded: disk full"), for a service monitor.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.cfg.Store.Healthy() {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	if h := s.cfg.Store.Health(); h.State != storage.StateOK {
		http.Error(w, "store "+h.State+": "+h.Reason, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok")
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var v Status
	if s.cfg.Status != nil {
		v = s.cfg.Status()
	}
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if err := s.cfg.Store.Retry(ps.ByName("id")); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"retried":true}`))
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	bw := &backupWriter{w: w, rc: http.NewResponseController(w)}
	if _, err := s.cfg.Store.WriteTo(bw); err != nil {
		if !bw.started {
			// Nothing sent yet (say, the store is closed): an error
			// status, not a 200 with an empty file.
			s.fail(w, err)
			return
		}
		s.logger.Error("backup failed", "err", err)
	}
}

// backupWriter sets the download headers with the first byte, so a backup
// that fails before it starts can still answer with an error. A store of a
// gigabyte takes longer than the server's WriteTimeout to stream, so each
// write moves the deadline on: a backup that progresses never ends early,
// one whose client stalls for backupStall does.
type backupWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

// backupStall is how long a backup client may take no bytes.
const backupStall = 30 * time.Second

func (b *backupWriter) Write(p []byte) (int, error) {
	if !b.started {
		b.started = true
		b.w.Header().Set("Content-Type", "application/octet-stream")
		b.w.Header().Set("Content-Disposition", `attachment; filename="shopbridge-backup.db"`)
	}
	b.rc.SetWriteDeadline(time.Now().Add(backupStall))
	return b.w.Write(p)
}
