package api

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// The console's JSON endpoints. Every time goes out twice: as RFC 3339 and
// formatted in the shop's time zone (--timezone), so that the browser's
// own zone and clock never change what the operator reads.

// ConsoleTime is a time as the console shows it.
type ConsoleTime struct {
	At    time.Time `json:"at"`
	Local string    `json:"local"` // YYYY-MM-DD HH:MM:SS in the shop's zone
}

func (s *Server) ctime(t time.Time) *ConsoleTime {
	if t.IsZero() {
		return nil
	}
	return &ConsoleTime{At: t, Local: t.In(s.cfg.Timezone).Format("2006-01-02 15:04:05")}
}

// consoleList bounds the parked receipts and paid-twice bills the overview
// carries; the bills page has the rest.
const consoleList = 50

// Overview is the body of admin/api/overview.
type Overview struct {
	Now              *ConsoleTime          `json:"now"`
	Timezone         string                `json:"timezone"`
	Version          string                `json:"version"`
	InstanceID       string                `json:"instance_id"`
	Name             string                `json:"name"`
	Upstream         string                `json:"upstream"`
	UpstreamURL      string                `json:"upstream_url,omitempty"`
	UpstreamSince    *ConsoleTime          `json:"upstream_since"`
	LastPullAt       *ConsoleTime          `json:"last_pull_at"`
	LastPushAt       *ConsoleTime          `json:"last_push_at"`
	LastError        string                `json:"last_error,omitempty"`
	LastErrorAt      *ConsoleTime          `json:"last_error_at"`
	Bills            int                   `json:"bills"`
	OpenBills        int                   `json:"open_bills"`
	Receipts         int                   `json:"receipts"`
	JournalEntries   int                   `json:"journal_entries"`
	Outbox           int                   `json:"outbox"`
	OutboxOldest     *ConsoleTime          `json:"outbox_oldest"`
	OutboxOldestAgeS *float64              `json:"outbox_oldest_age_s"`
	Parked           int                   `json:"parked"`
	ParkedReceipts   []ConsoleParked       `json:"parked_receipts"`
	OutboxReceipts   []ConsoleQueued       `json:"outbox_receipts"` // the oldest waiting, at most consoleOutbox
	PaidTwiceCount   int                   `json:"paid_twice_count"`
	PaidTwice        []ConsoleBill         `json:"paid_twice"`
	Terminals        []ConsoleTerm         `json:"terminals"`
	MDNS             shopbridge.MDNSStatus `json:"mdns"`
	Store            ConsoleStore          `json:"store"`
	Duplicates       []ConsoleDuplicate    `json:"duplicates"`
	OwnAddresses     []string              `json:"own_addresses"` // what this one announces, host:port
	Backup           ConsoleBackup         `json:"backup"`
	Clock            *ConsoleClock         `json:"clock"` // null before the first upstream answer
}

// ConsoleClock is this PC's clock against the upstream's (Status.Clock)
// with the console's times.
type ConsoleClock struct {
	SkewSeconds float64      `json:"skew_seconds"` // the upstream's time minus this PC's: positive, this PC is behind
	MeasuredAt  *ConsoleTime `json:"measured_at"`
	OK          bool         `json:"ok"`
	MaxSeconds  float64      `json:"max_seconds"`
}

// ConsoleBackup is the status's backup part with the console's times.
type ConsoleBackup struct {
	Dir         string       `json:"dir"`
	Every       string       `json:"every"`
	LastOKAt    *ConsoleTime `json:"last_ok_at"`
	LastOKFile  string       `json:"last_ok_file"`
	LastOKBytes int64        `json:"last_ok_bytes"`
	LastError   string       `json:"last_error"`
	LastErrorAt *ConsoleTime `json:"last_error_at"`
	Stale       bool         `json:"stale"`
}

func (s *Server) consoleBackup(b shopbridge.BackupStatus) ConsoleBackup {
	return ConsoleBackup{Dir: b.Dir, Every: b.Every, LastOKAt: s.ctime(deref(b.LastOKAt)), LastOKFile: b.LastOKFile,
		LastOKBytes: b.LastOKBytes, LastError: b.LastError, LastErrorAt: s.ctime(deref(b.LastErrorAt)), Stale: b.Stale}
}

// ConsoleDuplicate is another shopbridge on the LAN serving the same shop.
type ConsoleDuplicate struct {
	Name      string       `json:"name"`
	Addresses []string     `json:"addresses"`
	System    string       `json:"system,omitempty"`
	Reason    string       `json:"reason"` // same_upstream, same_store
	SeenAt    *ConsoleTime `json:"seen_at"`
}

// ConsoleStore tells whether the store can write: while it cannot (a full
// disk), registers get 503 for receipts and the page says so first.
type ConsoleStore struct {
	State  string       `json:"state"`            // storage.StateOK or storage.StateDegraded
	Reason string       `json:"reason,omitempty"` // "disk full", ...
	Since  *ConsoleTime `json:"since"`
}

// ConsoleParked is the status's parked receipt with the console's time
// (its received_at hides the embedded one) and its type.
type ConsoleParked struct {
	ParkedReceipt
	ReceivedAt *ConsoleTime `json:"received_at"`
	Type       string       `json:"type,omitempty"`
}

func (s *Server) consoleParked(p ParkedReceipt) ConsoleParked {
	return ConsoleParked{ParkedReceipt: p, ReceivedAt: s.ctime(p.ReceivedAt), Type: p.Type}
}

// ConsoleQueued is a receipt waiting in the outbox: the status's, with the
// console's time (its received_at hides the embedded one) and its age.
type ConsoleQueued struct {
	QueueReceipt
	ReceivedAt *ConsoleTime `json:"received_at"`
	AgeS       float64      `json:"age_s"`
}

// consoleOutbox bounds the waiting receipts the overview carries; the
// outbox page has the rest.
const consoleOutbox = 20

func (s *Server) consoleQueued(q QueueReceipt, now time.Time) ConsoleQueued {
	return ConsoleQueued{QueueReceipt: q, ReceivedAt: s.ctime(q.ReceivedAt), AgeS: max(0, now.Sub(q.ReceivedAt).Seconds())}
}

// ConsoleOutbox is the body of admin/api/console/outbox: one page of the
// waiting receipts, oldest first.
type ConsoleOutbox struct {
	Total    int             `json:"total"`
	Receipts []ConsoleQueued `json:"receipts"`
	Next     uint64          `json:"next"` // pass as after for the next page; 0 at the end
}

func (s *Server) consoleOutboxPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return shopbridge.Errorf(shopbridge.EINVALID, "query", "bad query string: %v", err)
	}
	var after uint64
	if a := v.Get("after"); a != "" {
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			return shopbridge.Errorf(shopbridge.EVALUE, "after", "after must be an outbox sequence number, not %q", a)
		}
	}
	limit := 100
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return shopbridge.Errorf(shopbridge.EVALUE, "limit", "limit must be 1..500, not %q", l)
		}
		limit = n
	}
	rs, err := s.cfg.Store.Outbox(after, limit+1)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	out := ConsoleOutbox{Total: s.cfg.Store.OutboxLen(), Receipts: []ConsoleQueued{}}
	if len(rs) > limit {
		rs = rs[:limit]
		out.Next = rs[limit-1].Seq
	}
	for _, rc := range rs {
		out.Receipts = append(out.Receipts, s.consoleQueued(NewQueueReceipt(rc), now))
	}
	return s.consoleJSON(w, out)
}

// ConsoleTerm is a register seen.
type ConsoleTerm struct {
	Device   string       `json:"device"`
	Address  string       `json:"address"`
	LastSeen *ConsoleTime `json:"last_seen"`
	LastKind string       `json:"last_kind,omitempty"`
}

// ConsoleBill is a bill in the console's lists.
type ConsoleBill struct {
	ID           string       `json:"id"`
	Number       string       `json:"number"`
	Date         string       `json:"date"`
	Summ         string       `json:"summ"` // the number's text as received
	CustomerName string       `json:"customername"`
	State        string       `json:"state"` // open, settled, paid_twice
	Listed       bool         `json:"listed"`
	UpdatedAt    *ConsoleTime `json:"updated_at"`
}

// ConsoleReceipt is one of a bill's receipts with its delivery state.
type ConsoleReceipt struct {
	EventID          string       `json:"event_id"`
	Type             string       `json:"type"`
	SettlementMethod string       `json:"settlement_method,omitempty"`
	Device           string       `json:"device,omitempty"`
	ReceivedAt       *ConsoleTime `json:"received_at"`
	State            string       `json:"state"`
	Attempts         int          `json:"attempts"`
	LastError        string       `json:"last_error,omitempty"`
	DeliveredAt      *ConsoleTime `json:"delivered_at"`
}

// zoneName names the shop's time zone; the OS zone by its abbreviation
// and offset, since its name there is only "Local".
func zoneName(loc *time.Location, now time.Time) string {
	if loc.String() != "Local" {
		return loc.String()
	}
	return now.In(loc).Format("MST -07:00")
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (s *Server) consoleOverview(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	now := s.cfg.Now()
	st := s.briefStatus()
	// The store's part once per poll, with the console's lists: the brief
	// status leaves it out.
	if err := st.ReadStore(s.cfg.Store, StatusLists{Limit: max(consoleOutbox, consoleList), Bills: true}); err != nil {
		return err
	}
	if st.Upstream == "" {
		st.Upstream = shopbridge.UpstreamNone
	}
	o := Overview{Now: s.ctime(now), Timezone: zoneName(s.cfg.Timezone, now), Version: st.Version, InstanceID: st.InstanceID,
		Name: st.Name, Upstream: st.Upstream, UpstreamURL: st.UpstreamURL, UpstreamSince: s.ctime(deref(st.UpstreamSince)),
		LastPullAt: s.ctime(deref(st.LastPullAt)), LastPushAt: s.ctime(deref(st.LastPushAt)), LastError: st.LastError, LastErrorAt: s.ctime(deref(st.LastErrorAt)),
		ParkedReceipts: []ConsoleParked{}, OutboxReceipts: []ConsoleQueued{}, PaidTwice: []ConsoleBill{}, Terminals: []ConsoleTerm{}, MDNS: st.MDNS}
	o.Backup = s.consoleBackup(st.Backup)
	if c := st.Clock; c != nil {
		o.Clock = &ConsoleClock{SkewSeconds: c.SkewSeconds, MeasuredAt: s.ctime(c.MeasuredAt), OK: c.OK, MaxSeconds: c.MaxSeconds}
	}
	if o.MDNS.State == "" {
		o.MDNS.State = "off"
	}
	o.Duplicates, o.OwnAddresses = []ConsoleDuplicate{}, []string{}
	for _, d := range st.Duplicates {
		o.Duplicates = append(o.Duplicates, ConsoleDuplicate{Name: d.Name, Addresses: d.Addresses, System: d.System, Reason: d.Reason, SeenAt: s.ctime(d.SeenAt)})
	}
	if len(o.Duplicates) > 0 {
		for _, i := range st.MDNS.Interfaces {
			for _, a := range i.Addrs {
				o.OwnAddresses = append(o.OwnAddresses, net.JoinHostPort(a, strconv.Itoa(st.MDNS.Port)))
			}
		}
	}
	h := st.StoreHealth
	o.Store = ConsoleStore{State: h.State, Reason: h.Reason, Since: s.ctime(h.Since)}
	if o.Version == "" {
		o.Version = shopbridge.Version
	}
	o.Bills, o.OpenBills, o.Receipts, o.JournalEntries = st.Bills, st.OpenBills, st.Receipts, st.Store.Journal
	o.Outbox, o.Parked = st.Outbox, st.Parked
	if st.OutboxOldest != nil {
		t := *st.OutboxOldest
		o.OutboxOldest = s.ctime(t)
		a := now.Sub(t).Seconds()
		o.OutboxOldestAgeS = &a
	}
	for _, q := range st.OutboxList[:min(len(st.OutboxList), consoleOutbox)] {
		o.OutboxReceipts = append(o.OutboxReceipts, s.consoleQueued(q, now))
	}
	for _, p := range st.ParkedList[:min(len(st.ParkedList), consoleList)] {
		o.ParkedReceipts = append(o.ParkedReceipts, s.consoleParked(p))
	}
	o.PaidTwiceCount = st.PaidTwiceCount
	for _, b := range st.PaidTwiceBills {
		o.PaidTwice = append(o.PaidTwice, s.consoleBill(b))
	}
	for _, t := range st.Terminals {
		o.Terminals = append(o.Terminals, ConsoleTerm{Device: t.Device, Address: t.Address, LastSeen: s.ctime(t.LastSeen), LastKind: t.LastKind})
	}
	return s.consoleJSON(w, o)
}

// consoleJSON writes v as the answer, never cached.
func (s *Server) consoleJSON(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) consoleBill(b *shopbridge.Bill) ConsoleBill {
	return ConsoleBill{ID: b.Summary.ID, Number: b.Summary.Number, Date: b.Summary.Date, Summ: b.Summary.Summ,
		CustomerName: b.Summary.CustomerName, State: storage.BillState(b), Listed: b.Listed, UpdatedAt: s.ctime(b.UpdatedAt)}
}

// ConsoleRow is one journal entry in a console page: what the table shows,
// with the bodies cut to a preview; ConsoleEntry has them in full.
type ConsoleRow struct {
	Seq             uint64       `json:"seq"`
	Time            *ConsoleTime `json:"time"`
	Client          string       `json:"client"`
	Device          string       `json:"device,omitempty"`
	Kind            string       `json:"kind"`
	Method          string       `json:"method,omitempty"`
	Path            string       `json:"path,omitempty"`
	Query           string       `json:"query,omitempty"`
	Status          int          `json:"status"`
	DurationMS      float64      `json:"duration_ms"`
	Source          string       `json:"source,omitempty"`
	Note            string       `json:"note,omitempty"`
	Receipt         string       `json:"receipt,omitempty"` // the event id of the receipt that was the request
	RequestPreview  string       `json:"request_preview"`
	ResponsePreview string       `json:"response_preview"`
	RequestSize     int          `json:"request_size"`
	ResponseSize    int          `json:"response_size"`
	Repeats         int          `json:"repeats,omitempty"` // later polls answered the same, folded into this row
	LastTime        *ConsoleTime `json:"last_time,omitempty"`
	RequestPretty   *string      `json:"request_pretty,omitempty"`
	ResponsePretty  *string      `json:"response_pretty,omitempty"`
}

// ConsoleJournalPage is the body of admin/api/journal/page.
type ConsoleJournalPage struct {
	Rows    []ConsoleRow `json:"rows"`
	Next    uint64       `json:"next"`
	Scanned int          `json:"scanned"`
	Done    bool         `json:"done"`
	Total   int          `json:"total"`
	Newest  uint64       `json:"newest"`
}

// previewRunes is how much of a body a journal row shows folded.
const previewRunes = 160

// preview is the start of a body on one line.
func preview(b []byte) string {
	var out []byte
	runes, space := 0, false
	for len(b) > 0 && runes < previewRunes {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			space = true
			continue
		}
		if space && len(out) > 0 {
			out = append(out, ' ')
			runes++
		}
		space = false
		out = utf8.AppendRune(out, r) // invalid bytes become U+FFFD
		runes++
	}
	if len(b) > 0 {
		out = append(out, "…"...)
	}
	return string(out)
}

// pretty indents a JSON body, keeping every number's text (4604.04 stays
// 4604.04, ids beyond 2^53 keep every digit: nothing is parsed into
// floats); anything else is shown as text.
func pretty(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if json.Valid(b) && json.Indent(&buf, b, "", "  ") == nil {
		return buf.String()
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func (s *Server) consoleRow(e shopbridge.JournalEntry) ConsoleRow {
	return ConsoleRow{Seq: e.Seq, Time: s.ctime(e.Time), Client: e.Client, Device: e.Device, Kind: e.Kind, Method: e.Method,
		Path: e.Path, Query: e.Query, Status: e.Status, DurationMS: float64(e.Duration) / 1e6, Source: e.Source, Note: e.Note,
		Receipt: e.ReqReceipt, RequestPreview: preview(e.ReqBody), ResponsePreview: preview(e.RespBody),
		RequestSize: len(e.ReqBody), ResponseSize: len(e.RespBody), Repeats: e.Repeats, LastTime: s.ctime(e.LastTime)}
}

// consoleTimeLayouts are the forms a since/until may take besides a
// duration and RFC 3339: what a datetime-local input sends, and by hand.
var consoleTimeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseConsoleTime reads a since/until: a duration back from now (1h), a
// time in the shop's zone (2026-03-22T21:44), or RFC 3339.
func parseConsoleTime(name, v string, now time.Time, loc *time.Location) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, layout := range consoleTimeLayouts {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, shopbridge.Errorf(shopbridge.EVALUE, name,
		"%s must be a duration like 1h, a time like 2026-03-22T21:44 (in the shop's time zone) or RFC 3339, not %q", name, v)
}

// ParseConsoleJournalQuery reads the parameters of admin/api/journal/page.
func ParseConsoleJournalQuery(raw string, now time.Time, loc *time.Location) (storage.JournalPageQuery, error) {
	var q storage.JournalPageQuery
	v, err := url.ParseQuery(raw)
	if err != nil {
		return q, shopbridge.Errorf(shopbridge.EINVALID, "query", "bad query string: %v", err)
	}
	for _, p := range []struct {
		name string
		to   *uint64
	}{{"before", &q.Before}, {"after", &q.After}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return q, shopbridge.Errorf(shopbridge.EVALUE, p.name, "%s must be a journal sequence number, not %q", p.name, s)
			}
			*p.to = n
		}
	}
	q.Limit = 50
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return q, shopbridge.Errorf(shopbridge.EVALUE, "limit", "limit must be 1..500, not %q", s)
		}
		q.Limit = n
	}
	for _, p := range []struct {
		name string
		to   *string
		max  int
	}{{"kind", &q.Kind, 64}, {"terminal", &q.Terminal, 200}, {"text", &q.Text, 200}} {
		s := strings.TrimSpace(v.Get(p.name))
		if utf8.RuneCountInString(s) > p.max {
			return q, shopbridge.Errorf(shopbridge.EVALUE, p.name, "%s is longer than %d characters", p.name, p.max)
		}
		*p.to = s
	}
	q.Kind = strings.ToUpper(q.Kind)
	switch p := v.Get("polls"); p {
	case "", "show", "1", "true":
	case "hide", "0", "false":
		q.NoPolls = true
	default:
		return q, shopbridge.Errorf(shopbridge.EVALUE, "polls", "polls must be show or hide, not %q", p)
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := strings.TrimSpace(v.Get(p.name)); s != "" {
			t, err := parseConsoleTime(p.name, s, now, loc)
			if err != nil {
				return q, err
			}
			*p.to = t
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, shopbridge.Errorf(shopbridge.EVALUE, "until", "until must be after since")
	}
	return q, nil
}

func (s *Server) consoleJournalPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q, err := ParseConsoleJournalQuery(r.URL.RawQuery, s.cfg.Now(), s.cfg.Timezone)
	if err != nil {
		return err
	}
	p, err := s.cfg.Store.JournalPage(q)
	if err != nil {
		return err
	}
	out := ConsoleJournalPage{Rows: make([]ConsoleRow, 0, len(p.Entries)), Next: p.Next, Scanned: p.Scanned, Done: p.Done,
		Total: p.Total, Newest: p.Newest}
	for _, e := range p.Entries {
		out.Rows = append(out.Rows, s.consoleRow(e))
	}
	return s.consoleJSON(w, out)
}

func (s *Server) consoleJournalEntry(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	seq, err := strconv.ParseUint(ps.ByName("seq"), 10, 64)
	if err != nil {
		return shopbridge.Errorf(shopbridge.ENOTFOUND, "seq", "no journal entry %q (sequence numbers are whole numbers)", ps.ByName("seq"))
	}
	e, err := s.cfg.Store.JournalEntry(seq)
	if err != nil {
		return err
	}
	row := s.consoleRow(e)
	req, resp := pretty(e.ReqBody), pretty(e.RespBody)
	row.RequestPretty, row.ResponsePretty = &req, &resp
	return s.consoleJSON(w, row)
}

// ConsoleBills is the body of admin/api/bills.
type ConsoleBills struct {
	View   string         `json:"view"` // "open", "date" or "search"
	Date   string         `json:"date,omitempty"`
	Query  string         `json:"q,omitempty"`
	Counts map[string]int `json:"counts,omitempty"`
	Open   int            `json:"open"` // bills open now (the no-parameter list)
	Bills  []ConsoleBill  `json:"bills"`
	Next   string         `json:"next"`
	// Empty says why a first page has no bills (a key of the console's
	// strings: bills.empty_standalone, bills.empty_never_synced, ...).
	Empty    string       `json:"empty,omitempty"`
	SyncedAt *ConsoleTime `json:"synced_at"`
}

// Why the open bills are none, as the bills page explains it.
const (
	emptyStandalone  = "bills.empty_standalone"   // no upstream and no bill ever learned
	emptyNeverSynced = "bills.empty_never_synced" // an upstream, but no pull succeeded yet
	emptyAllSettled  = "bills.empty_all_settled"  // bills stored, every one settled or gone from the list
	emptyCRMEmpty    = "bills.empty_crm_empty"    // the CRM's list was empty at the last pull
	emptyDay         = "bills.empty_day"          // no bill dated that day
	emptySearch      = "bills.empty_search"       // no bill has that number or id
)

// emptyReason tells why the open bills are none.
func (s *Server) emptyReason(stats storage.Stats) string {
	upstream := shopbridge.UpstreamNone
	if st := s.briefStatus(); st.Upstream != "" {
		upstream = st.Upstream
	}
	switch {
	case stats.Bills > 0:
		return emptyAllSettled
	case upstream == shopbridge.UpstreamNone:
		return emptyStandalone
	case s.cfg.Store.SyncedAt().IsZero():
		return emptyNeverSynced
	}
	return emptyCRMEmpty
}

// briefStatus is the status without the store's part (ReadStore).
func (s *Server) briefStatus() Status {
	switch {
	case s.cfg.BriefStatus != nil:
		return s.cfg.BriefStatus()
	case s.cfg.Status != nil:
		return s.cfg.Status()
	}
	return Status{}
}

func (s *Server) consoleBills(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return shopbridge.Errorf(shopbridge.EINVALID, "query", "bad query string: %v", err)
	}
	out := ConsoleBills{Bills: []ConsoleBill{}, SyncedAt: s.ctime(s.cfg.Store.SyncedAt())}
	stats, err := s.cfg.Store.Stats()
	if err != nil {
		return err
	}
	out.Open = stats.OpenBills
	limit := 100
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return shopbridge.Errorf(shopbridge.EVALUE, "limit", "limit must be 1..500, not %q", l)
		}
		limit = n
	}
	text := strings.TrimSpace(v.Get("q"))
	switch view := v.Get("view"); {
	case view == "open" && text == "":
		out.View = "open"
		bills, next, err := s.cfg.Store.OpenBills(v.Get("after"), limit)
		if err != nil {
			return err
		}
		for _, b := range bills {
			out.Bills = append(out.Bills, s.consoleBill(b))
		}
		out.Next = next
		if len(out.Bills) == 0 && v.Get("after") == "" {
			out.Empty = s.emptyReason(stats)
		}
		return s.consoleJSON(w, out)
	case view != "" && view != "open" && view != "date" && view != "search":
		return shopbridge.Errorf(shopbridge.EVALUE, "view", "view must be open, date or search, not %q", view)
	}
	if text != "" {
		out.View = "search"
		if utf8.RuneCountInString(text) > 100 {
			return shopbridge.Errorf(shopbridge.EVALUE, "q", "q is longer than 100 characters")
		}
		found, err := s.cfg.Store.FindBills(text, consoleList)
		if err != nil {
			return err
		}
		out.Query = text
		for _, b := range found {
			out.Bills = append(out.Bills, s.consoleBill(b))
		}
		if len(out.Bills) == 0 {
			out.Empty = emptySearch
		}
		return s.consoleJSON(w, out)
	}
	out.View = "date"
	q := storage.DayBillsQuery{Date: v.Get("date"), After: v.Get("after"), Limit: limit}
	if q.Date == "" || q.Date == "today" {
		q.Date = s.cfg.Now().In(s.cfg.Timezone).Format("2006-01-02")
	} else if _, err := time.Parse("2006-01-02", q.Date); err != nil || len(q.Date) != 10 {
		return shopbridge.Errorf(shopbridge.EVALUE, "date", "date must be \"today\" or YYYY-MM-DD, not %q", q.Date)
	}
	switch st := v.Get("state"); st {
	case "", "all":
	case storage.BillOpen, storage.BillSettled, storage.BillPaidTwice:
		q.State = st
	default:
		return shopbridge.Errorf(shopbridge.EVALUE, "state", "state must be all, open, settled or paid_twice, not %q", st)
	}
	q.Counts = q.After == ""
	day, err := s.cfg.Store.DayBills(q)
	if err != nil {
		return err
	}
	out.Date, out.Counts, out.Next = q.Date, day.Counts, day.Next
	for _, b := range day.Bills {
		out.Bills = append(out.Bills, s.consoleBill(b))
	}
	if len(out.Bills) == 0 && q.After == "" {
		out.Empty = emptyDay
	}
	return s.consoleJSON(w, out)
}

// ConsoleBillDetail is the body of admin/api/bill/:id.
type ConsoleBillDetail struct {
	Bill       ConsoleBill      `json:"bill"`
	BodyPretty string           `json:"body_pretty"` // "" while only the list row is known
	Receipts   []ConsoleReceipt `json:"receipts"`
}

func (s *Server) consoleBillDetail(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id := ps.ByName("id")
	if !shopbridge.ValidID(id) {
		return shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %q (ids are whole numbers)", id)
	}
	b, err := s.cfg.Store.BillRecord(id)
	if err != nil {
		return err
	}
	rs, err := s.cfg.Store.BillReceipts(id)
	if err != nil {
		return err
	}
	out := ConsoleBillDetail{Bill: s.consoleBill(b), BodyPretty: pretty(b.Body), Receipts: []ConsoleReceipt{}}
	for _, rc := range rs {
		out.Receipts = append(out.Receipts, ConsoleReceipt{EventID: rc.EventID, Type: rc.Type, SettlementMethod: rc.SettlementMethod,
			Device: rc.DeviceID, ReceivedAt: s.ctime(rc.ReceivedAt), State: rc.State, Attempts: rc.Attempts,
			LastError: rc.LastError, DeliveredAt: s.ctime(rc.DeliveredAt)})
	}
	return s.consoleJSON(w, out)
}
