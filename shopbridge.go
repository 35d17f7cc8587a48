// Package shopbridge holds the domain types of shopbridge and the small
// interfaces between its parts. It imports none of them, so storage, sync,
// discovery, the HTTP layer and the daemon can all depend on it.
package shopbridge

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ProtocolVersion is the terminal protocol spoken at /api/v2.
const ProtocolVersion = "0.1.0"

// Build information, set at link time with -ldflags -X.
var (
	Version   = "dev"
	Commit    = "none"
	BuildDate = "unknown"
)

// Error kinds. Each maps to one HTTP status and Evotor error code in the
// HTTP layer; everything else is an internal error.
const (
	ECONFLICT     = "conflict"     // 409: an event id was seen with other bytes
	EINTERNAL     = "internal"     // 500
	EINVALID      = "invalid"      // 400: malformed request (syntax)
	EMISSING      = "missing"      // 400: a required field is absent or empty
	EVALUE        = "value"        // 400: well-formed, but a value cannot be used
	ENOTFOUND     = "not_found"    // 404
	ETOOLARGE     = "too_large"    // 413: the body is over the limit
	EURITOOLONG   = "uri_too_long" // 414
	EHEADERS      = "headers"      // 431: the request headers are over the limit
	EUNAVAILABLE  = "unavailable"  // 503: the store is closed or cannot write
	EUNAUTHORIZED = "unauthorized" // 401
	EFORBIDDEN    = "forbidden"    // 403
	EMETHOD       = "method"       // 405
)

// Error is the project's error: a kind, the field or path it is about and a
// human message. Wrapped errors keep the kind reachable with errors.As.
type Error struct {
	Kind    string
	Subject string
	Message string
}

func (e *Error) Error() string {
	if e.Subject != "" {
		return fmt.Sprintf("%s: %s", e.Subject, e.Message)
	}
	return e.Message
}

// Errorf returns an *Error of the given kind about subject.
func Errorf(kind, subject, format string, args ...any) *Error {
	return &Error{Kind: kind, Subject: subject, Message: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the kind of the first *Error in err's chain, EINTERNAL
// for any other error and "" for nil.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return EINTERNAL
}

// ErrorSubject returns the subject of the first *Error in err's chain.
func ErrorSubject(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Subject
	}
	return ""
}

// BillSummary is one row of /api/v2/list. Raw is the summary object exactly
// as the upstream sent it (or derived from the bill when the upstream never
// listed it); the other fields are parsed from it for indexing.
type BillSummary struct {
	ID           string // decimal digits, any length: ids beyond 2^53 keep every digit
	Date         string // "YYYY-MM-DD HH:MM:SS" in the shop's time zone
	Summ         string // number text as received
	Number       string
	CustomerName string
	Raw          []byte
}

// Bill is a bill as stored: the upstream's exact bytes plus local state.
type Bill struct {
	Summary BillSummary
	Body    []byte // exact bytes of bill/byid; nil while only the summary is known

	Listed    bool      // in the upstream's no-parameter list at the last pull
	Settled   bool      // settled here by a receipt
	PaidTwice bool      // two settling receipts arrived for it
	UpdatedAt time.Time // last change of Body or Summary
}

// Receipt is an accepted receipt webhook event.
type Receipt struct {
	Seq        uint64 // order of acceptance, the outbox order
	EventID    string
	Body       []byte            // exact bytes received
	Headers    map[string]string // the X-Evotor-* headers it came with
	ReceivedAt time.Time

	Type             string // data.type: SELL, PAYBACK, ...
	BillID           string // data.extras.billId, may be ""
	SettlementMethod string // data.extras.settlementMethod, may be ""
	DeviceID         string // X-Evotor-Device-UUID or data.deviceId

	State       string // ReceiptQueued, ReceiptDelivered or ReceiptParked
	Attempts    int
	LastError   string    // last delivery failure, or the upstream's answer when parked
	DeliveredAt time.Time // zero until delivered
}

// Receipt delivery states.
const (
	ReceiptQueued    = "queued"
	ReceiptDelivered = "delivered"
	ReceiptParked    = "parked"
)

// OrderKey is the key within which receipts never overtake each other: the
// bill they settle or, with no bill, the register that sent them.
func (r *Receipt) OrderKey() string {
	if r.BillID != "" {
		return "bill:" + r.BillID
	}
	return "device:" + r.DeviceID
}

// Upstream states, as shown in admin/api/status and /metrics.
const (
	UpstreamNone    = "none"
	UpstreamOnline  = "online"
	UpstreamOffline = "offline"
)

// JournalEntry is one exchange with a terminal or with the upstream.
type JournalEntry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Client  string    `json:"client"`           // address, or "upstream"
	Device  string    `json:"device,omitempty"` // X-Evotor-Device-UUID
	Kind    string    `json:"kind"`             // HELLO, LIST, BILL, RECEIPT, UPSTREAM_*, ...
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Query   string    `json:"query,omitempty"`
	ReqBody []byte    `json:"request_body,omitempty"`
	// ReqReceipt names the stored receipt whose bytes were the request
	// body, instead of keeping them twice; reading the journal fills
	// ReqBody from it.
	ReqReceipt string        `json:"request_receipt,omitempty"`
	Status     int           `json:"status"`
	RespBody   []byte        `json:"response_body,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
	Source     string        `json:"source,omitempty"` // "store" or "upstream"
	Note       string        `json:"note,omitempty"`   // errors, state changes
	// Repeats counts the later upstream polls answered with exactly these
	// bytes, folded into this entry instead of written as entries of their
	// own; LastTime is the latest of them.
	Repeats  int       `json:"repeats,omitempty"`
	LastTime time.Time `json:"last_time,omitzero"`
	// Steady is the entry's time on the daemon's steady clock, which wall
	// clock jumps do not move; retention ages entries by it. Zero: Time.
	Steady time.Time `json:"-"`
}

// Journal records exchanges. Record must never block or fail the caller.
type Journal interface {
	Record(e JournalEntry)
}

// ReadThrough fetches what the store misses from the upstream while it is
// believed reachable. It is the seam between the HTTP layer and sync.
type ReadThrough interface {
	// BillByID fetches, stores and returns the bill, or an ENOTFOUND error
	// at once when the upstream is offline or does not know the bill.
	BillByID(ctx context.Context, id string) (*Bill, error)
	// ListByNumber asks the upstream's list for a bill number, stores what
	// it finds (fetching the full bills) and returns the summaries.
	ListByNumber(ctx context.Context, number string) ([]BillSummary, error)
}

// SyncStatus is the syncer's state: the upstream's, its last exchanges
// and the push window. The daemon's status (admin/api/status) shows it.
type SyncStatus struct {
	Upstream      string    `json:"upstream"` // online, offline
	UpstreamURL   string    `json:"upstream_url"`
	UpstreamSince time.Time `json:"upstream_since"`
	LastPullAt    time.Time `json:"last_pull_at,omitzero"`
	LastPushAt    time.Time `json:"last_push_at,omitzero"`
	LastHelloAt   time.Time `json:"last_hello_at,omitzero"`
	LastError     string    `json:"last_error,omitempty"` // while the upstream fails; gone once it answers again
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	InFlight      int       `json:"in_flight"`
	PushWindow    int       `json:"push_window"` // receipts that may be in flight now (sync/limit.go); 0 while the upstream asked to wait
	Pending       int       `json:"pending"`     // receipts loaded for pushing, not yet in flight
	// Clock is this PC's clock against the upstream's Date headers; nil
	// before the first answer.
	Clock *ClockStatus `json:"clock"`
	// BusyUntil is when calls to the upstream may go again (sync/backoff.go):
	// its Retry-After or the delay its failures made; zero when they may
	// go now. BusyReason is the answer behind it, BackoffWaves the failing
	// waves in a row.
	BusyUntil    time.Time `json:"busy_until,omitzero"`
	BusyReason   string    `json:"busy_reason,omitempty"`
	BackoffWaves int       `json:"backoff_waves,omitempty"`
}

// MDNSStatus is the mDNS announcer's state, shown under "mdns" in
// admin/api/status.
type MDNSStatus struct {
	State       string          `json:"state"` // "starting", "announcing", "error" or "off"
	Error       string          `json:"error,omitempty"`
	Instance    string          `json:"instance,omitempty"` // the name actually announced; gets " (2)" after a name conflict
	Host        string          `json:"host,omitempty"`     // our own mDNS host name
	Port        int             `json:"port,omitempty"`
	Interfaces  []MDNSInterface `json:"interfaces"`
	Since       time.Time       `json:"since,omitzero"`        // when State last changed
	AnnouncedAt time.Time       `json:"announced_at,omitzero"` // last unsolicited announcement
	// The last browse for other instances (one shop, one appliance): when,
	// and how many other instances it found, duplicates or not.
	OthersCheckedAt time.Time `json:"others_checked_at,omitzero"`
	Others          int       `json:"others"`
}

// MDNSInterface is one interface announced on and the addresses it offers.
type MDNSInterface struct {
	Name  string   `json:"name"`
	Addrs []string `json:"addrs"`
}

// Duplicate is another shopbridge on the LAN that serves the same shop: it
// announces the same upstream identity (the same CRM URL and token), or
// the same store instance id (a copied disk). Registers that discover on
// their own may split between the two, and a bill settled at one stays
// open at the other.
type Duplicate struct {
	Name       string    `json:"name"`                  // its mDNS instance name
	Addresses  []string  `json:"addresses"`             // host:port it offers
	URL        string    `json:"url,omitempty"`         // the base URL that answered hello
	System     string    `json:"system,omitempty"`      // its hello's system string
	InstanceID string    `json:"instance_id,omitempty"` // its store's instance id
	Reason     string    `json:"reason"`                // DuplicateUpstream or DuplicateStore
	SeenAt     time.Time `json:"seen_at"`               // last found on the LAN
}

// Why another instance is a duplicate.
const (
	DuplicateUpstream = "same_upstream" // the same CRM URL and token
	DuplicateStore    = "same_store"    // the same store instance id: a copied disk
)
