package api

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
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

	// ParkedList, PaidTwice, Terminals and OutboxList carry at most
	// ListLimit items each (the oldest receipts, the newest registers);
	// the counts say how many there are, and admin/api/outbox and
	// admin/api/parked page the rest.
	ListLimit      int            `json:"list_limit"`
	OutboxList     []QueueReceipt `json:"outbox_receipts"`
	PaidTwiceCount int            `json:"paid_twice_count"`
	// PaidTwiceBills are the bills of PaidTwice, read only for the
	// console (StatusLists.Bills), which shows them.
	PaidTwiceBills []*shopbridge.Bill `json:"-"`
	TerminalsCount int                `json:"terminals_count"`
	// ConsoleURLs are where a browser opens the console: on this PC first,
	// then from the LAN (which needs --admin-token).
	ConsoleURLs []string `json:"console_urls,omitempty"`
	// Duplicates are other shopbridges on the LAN serving the same shop
	// (the same upstream, or a copy of this store): one shop, one appliance.
	Duplicates []shopbridge.Duplicate  `json:"duplicates"`
	Backup     shopbridge.BackupStatus `json:"backup"`

	// Clock is this PC's clock against the upstream's (its answers' Date
	// header); null before the first answer and without an upstream.
	Clock *shopbridge.ClockStatus `json:"clock"`
	// UpstreamBusyUntil is when calls to the upstream may go again (its
	// Retry-After, or the backoff after its failures); absent when they
	// go now. UpstreamBusyReason is the answer behind it.
	UpstreamBusyUntil  *time.Time `json:"upstream_busy_until,omitempty"`
	UpstreamBusyReason string     `json:"upstream_busy_reason,omitempty"`
	// HTTPS is the HTTPS listener and its certificate's fingerprint;
	// absent when it is off (https-listen none).
	HTTPS *shopbridge.HTTPSStatus `json:"https,omitempty"`
}

// ParkedReceipt is a receipt the upstream refused, for the operator.
type ParkedReceipt struct {
	EventID    string    `json:"event_id"`
	BillID     string    `json:"bill_id,omitempty"`
	Type       string    `json:"-"` // the console shows it (ConsoleParked); admin/api/status never carried it
	ReceivedAt time.Time `json:"received_at"`
	Attempts   int       `json:"attempts"`
	Answer     string    `json:"answer"`
}

// NewParkedReceipt is the parked r as the status shows it.
func NewParkedReceipt(r *shopbridge.Receipt) ParkedReceipt {
	return ParkedReceipt{EventID: r.EventID, BillID: r.BillID, Type: r.Type, ReceivedAt: r.ReceivedAt, Attempts: r.Attempts, Answer: r.LastError}
}

// StatusListLimit is how many items each list of the status carries.
const StatusListLimit = 20

// StatusLists says which of the store's lists a status carries.
type StatusLists struct {
	// Limit bounds each list: the first receipts of the outbox and of
	// the parked list, the bills paid twice. Zero carries none; the
	// counts and the oldest waiting receipt are always there.
	Limit int
	// Bills reads the bills paid twice themselves (PaidTwiceBills, for
	// the console), not only their ids.
	Bills bool
}

// ReadStore fills the store's part of the status: its instance id, the
// counts, its health, the oldest waiting receipt and the lists that lists
// asks for. The counts and the queues come from one read transaction, so
// that they agree while receipts are being pushed. What fails to read
// stays zero and the rest is still read; the error is the first failure.
func (st *Status) ReadStore(store *storage.Store, lists StatusLists) error {
	st.InstanceID = store.InstanceID()
	st.ParkedList, st.OutboxList, st.PaidTwice, st.PaidTwiceBills = []ParkedReceipt{}, []QueueReceipt{}, []string{}, nil
	q, err := store.Queues(max(1, lists.Limit)) // at least the oldest waiting receipt
	if err == nil {
		s := q.Stats
		st.Store = s
		st.Bills, st.OpenBills, st.Receipts, st.Outbox, st.Parked = s.Bills, s.OpenBills, s.Receipts, s.Outbox, s.Parked
		if len(q.OutboxHead) > 0 {
			t := q.OutboxHead[0].ReceivedAt
			st.OutboxOldest = &t
		}
		if lists.Limit > 0 {
			for _, r := range q.ParkedHead {
				st.ParkedList = append(st.ParkedList, NewParkedReceipt(r))
			}
			for _, r := range q.OutboxHead {
				st.OutboxList = append(st.OutboxList, NewQueueReceipt(r))
			}
		}
	}
	st.StoreHealth = store.Health()
	st.PaidTwiceCount = store.PaidTwiceCount()
	switch {
	case lists.Limit <= 0:
	case lists.Bills:
		bills, berr := store.PaidTwiceBills(lists.Limit)
		if berr != nil && err == nil {
			err = berr
		}
		st.PaidTwiceBills = bills
		for _, b := range bills {
			st.PaidTwice = append(st.PaidTwice, b.Summary.ID)
		}
	default:
		if ids, err := store.PaidTwice(); err == nil && ids != nil {
			st.PaidTwice = ids[:min(len(ids), lists.Limit)]
		}
	}
	return err
}

// QueueReceipt is a receipt in the outbox or parked, as the paged lists
// show it.
type QueueReceipt struct {
	Seq        uint64    `json:"seq"` // its place in the queue: after= of the next page
	EventID    string    `json:"event_id"`
	BillID     string    `json:"bill_id,omitempty"`
	Type       string    `json:"type,omitempty"`
	Device     string    `json:"device,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Attempts   int       `json:"attempts"`
	// LastError is the last attempt's failure; for a parked receipt, the
	// upstream's answer.
	LastError string `json:"last_error,omitempty"`
}

// NewQueueReceipt is r as the lists show it.
func NewQueueReceipt(r *shopbridge.Receipt) QueueReceipt {
	return QueueReceipt{Seq: r.Seq, EventID: r.EventID, BillID: r.BillID, Type: r.Type, Device: r.DeviceID,
		ReceivedAt: r.ReceivedAt, Attempts: r.Attempts, LastError: r.LastError}
}

// QueuePage is the body of admin/api/outbox and admin/api/parked: one page
// of the queue, oldest first.
type QueuePage struct {
	Total    int            `json:"total"` // receipts in the queue now
	Receipts []QueueReceipt `json:"receipts"`
	// NextAfter is the after= of the next page; absent on the last one.
	NextAfter uint64 `json:"next_after,omitempty"`
}

// Queue page sizes: limit= defaults to DefaultQueuePage, at most
// MaxQueuePage.
const (
	DefaultQueuePage = 100
	MaxQueuePage     = 1000
)

// ParseQueueQuery reads after (a seq, default 0: from the oldest) and
// limit (1..MaxQueuePage, default DefaultQueuePage).
func ParseQueueQuery(raw string) (after uint64, limit int, err error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return 0, 0, shopbridge.Errorf(shopbridge.EINVALID, "query", "bad query string: %v", err)
	}
	limit = DefaultQueuePage
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, shopbridge.Errorf(shopbridge.EVALUE, "after", "after must be a receipt's seq (a whole number), not %q", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxQueuePage {
			return 0, 0, shopbridge.Errorf(shopbridge.EVALUE, "limit", "limit must be 1..%d, not %q", MaxQueuePage, v)
		}
		limit = n
	}
	return after, limit, nil
}

// queuePage answers admin/api/outbox or admin/api/parked from list (a
// store query) and the queue's count.
func (s *Server) queuePage(list func(after uint64, limit int) ([]*shopbridge.Receipt, error), count func(storage.Stats) int) opHandler {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		after, limit, err := ParseQueueQuery(r.URL.RawQuery)
		if err != nil {
			return err
		}
		rs, err := list(after, limit+1) // one more tells whether a next page exists
		if err != nil {
			return err
		}
		stats, err := s.cfg.Store.Stats()
		if err != nil {
			return err
		}
		page := QueuePage{Total: count(stats), Receipts: make([]QueueReceipt, 0, min(len(rs), limit))}
		for i, rc := range rs {
			if i == limit {
				page.NextAfter = rs[i-1].Seq
				break
			}
			page.Receipts = append(page.Receipts, NewQueueReceipt(rc))
		}
		body, err := json.Marshal(page)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	}
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
	Repeats    int             `json:"repeats,omitempty"` // later polls answered the same, folded into this entry
	LastTime   *time.Time      `json:"last_time,omitempty"`
}

// NewJournalRow is a journal entry as admin/api/journal shows it (also used
// by shopbridge journal reading a stopped daemon's store).
func NewJournalRow(e shopbridge.JournalEntry) JournalRow {
	return JournalRow{Seq: e.Seq, Time: e.Time, Client: e.Client, Device: e.Device, Kind: e.Kind,
		Method: e.Method, Path: e.Path, Query: e.Query, Request: rawOrString(e.ReqBody), Status: e.Status,
		Response: rawOrString(e.RespBody), DurationMS: float64(e.Duration) / 1e6, Source: e.Source, Note: e.Note,
		Repeats: e.Repeats, LastTime: nonZero(e.LastTime)}
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
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

func (s *Server) journal(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	jq, err := ParseJournalQuery(r.URL.RawQuery, s.cfg.Now())
	if err != nil {
		return err
	}
	entries, err := s.cfg.Store.Journal(jq)
	if err != nil {
		return err
	}
	rows := make([]JournalRow, len(entries))
	for i, e := range entries {
		rows[i] = NewJournalRow(e)
	}
	body, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
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

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var v Status
	if s.cfg.Status != nil {
		v = s.cfg.Status()
	}
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	if n := len(ps.ByName("id")); n > shopbridge.MaxID {
		return tooLong("id", n)
	}
	if err := s.cfg.Store.Retry(ps.ByName("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, []byte(`{"retried":true}`))
	return nil
}

// backup streams a snapshot of the store. The snapshot is spooled first
// (storage.Snapshot), so the read transaction ends before the first byte is
// sent, however slowly the client reads. The answer carries its length
// (Content-Length) and its SHA-256 in headers (BackupSHA256Header, hex, and
// RFC 9530's Repr-Digest): a client tells a complete snapshot from a cut
// one by both.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	sn, err := s.cfg.Store.Snapshot(r.Context(), filepath.Dir(s.cfg.Store.Path()))
	if err != nil {
		// Nothing sent yet: an error status, not a 200 with an empty file.
		s.logger.Warn("backup refused", "err", err)
		return err
	}
	defer sn.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="shopbridge-backup.db"`)
	h.Set("Content-Length", strconv.FormatInt(sn.Size, 10))
	h.Set(BackupSHA256Header, hex.EncodeToString(sn.SHA256[:]))
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sn.SHA256[:])+":")
	h.Set("X-Shopbridge-Backup-Taken-At", sn.TakenAt.UTC().Format(time.RFC3339Nano))
	bw := &backupWriter{w: w, rc: http.NewResponseController(w)}
	if _, err := io.Copy(bw, sn.Reader()); err != nil {
		// The answer has begun: an error body now would only corrupt it.
		s.logger.Warn("backup cut: the client stopped reading", "err", err, "bytes", sn.Size)
	}
	return nil
}

// BackupSHA256Header carries the hex SHA-256 of GET /admin/api/backup's body.
const BackupSHA256Header = "X-Shopbridge-Backup-Sha256"

// backupWriter streams the spool. A store of a
// gigabyte takes longer than the server's WriteTimeout to stream, so each
// write moves the deadline on: a backup that progresses never ends early,
// one whose client stalls for backupStall does.
type backupWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// backupStall is how long a backup client may take no bytes.
const backupStall = 30 * time.Second

func (b *backupWriter) Write(p []byte) (int, error) {
	b.rc.SetWriteDeadline(time.Now().Add(backupStall))
	return b.w.Write(p)
}
