package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

func receiptBody(eventID, typ, billID, method string) string {
	extras := ""
	if billID != "" || method != "" {
		extras = fmt.Sprintf(`, "extras": {"billId": %q, "number": "50259", "settlementMethod": %q, "contentModified": false}`, billID, method)
	}
	return fmt.Sprintf(`{"id": %q, "data": {"id": "4387ae61-6f91-49ab-b693-d2ed8eeb903f", "type": %q, "items": [{"id": "4183", "name": "\u0428\u0443 \u043f\u0443\u044d\u0440 \"Q\" 🙂", "price": 13.05, "mark": "0104\u001d93"}], "totalAmount": 4604.04, "deviceId": "20251202-AA8B-407D-80BF-6266DA5332CF"%s}, "type": "ReceiptCreated", "userId": "01-000000008095428", "version": 2, "timestamp": 1774204950650}`,
		eventID, typ, extras)
}

func TestReceiptAccepted(t *testing.T) {
	now := time.Date(2026, 3, 22, 18, 42, 30, 0, time.FixedZone("MSK", 3*3600))
	ts := newServer(t, api.Config{Now: func() time.Time { return now }})
	seed(t, ts.store)
	body := receiptBody("77fb892f-87ce-43f1-b998-48c848b3073f", "SELL", "49024", "FullSettlement")
	a := ts.post(t, "/api/v2/receipts", body,
		"X-Evotor-Store-Uuid", "20251202-D77B-406B-80A6-EBCECD5C3536",
		"X-Evotor-Device-UUID", "20251202-AA8B-407D-80BF-6266DA5332CF",
		"X-Evotor-User-Id", "01-000000008095428",
		"Authorization", "Bearer evotor-proxy-token",
		"X-Other", "not kept",
		"Content-Type", "application/json")
	if a.status != 200 || len(a.body) != 0 {
		t.Fatalf("receipt = %d %q, want 200 with an empty body", a.status, a.body)
	}
	r, err := ts.store.Receipt("77fb892f-87ce-43f1-b998-48c848b3073f")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Body) != body {
		t.Errorf("stored body differs:\n%s\nwant\n%s", r.Body, body)
	}
	wantHeaders := map[string]string{
		"X-Evotor-Store-Uuid":  "20251202-D77B-406B-80A6-EBCECD5C3536",
		"X-Evotor-Device-Uuid": "20251202-AA8B-407D-80BF-6266DA5332CF",
		"X-Evotor-User-Id":     "01-000000008095428",
	}
	if fmt.Sprint(r.Headers) != fmt.Sprint(wantHeaders) {
		t.Errorf("stored headers %v, want %v", r.Headers, wantHeaders)
	}
	if r.Type != "SELL" || r.BillID != "49024" || r.SettlementMethod != "FullSettlement" ||
		r.DeviceID != "20251202-AA8B-407D-80BF-6266DA5332CF" || !r.ReceivedAt.Equal(now) || r.State != shopbridge.ReceiptQueued {
		t.Errorf("stored receipt = %+v", r)
	}
	if a := ts.get(t, "/api/v2/list"); string(a.body) != listOf(0, 2, 3) {
		t.Errorf("the SELL did not settle bill 49024: list = %s", a.body)
	}

	// The same bytes again: 200, stored once.
	if a := ts.post(t, "/api/v2/receipts", body); a.status != 200 || len(a.body) != 0 {
		t.Errorf("duplicate = %d %q", a.status, a.body)
	}
	// Other bytes under the same id: 409, nothing overwritten.
	other := strings.Replace(body, "4604.04", "4604.05", 1)
	wantError(t, "conflict", ts.post(t, "/api/v2/receipts", other), 409, api.CodeConflict, "id")
	if r, _ := ts.store.Receipt("77fb892f-87ce-43f1-b998-48c848b3073f"); string(r.Body) != body {
		t.Error("a conflicting receipt overwrote the first")
	}
	if out, _ := ts.store.Outbox(0, 0); len(out) != 1 {
		t.Errorf("outbox holds %d receipts, want 1", len(out))
	}

	// A PAYBACK reopens the bill; a prepayment leaves it open.
	ts.post(t, "/api/v2/receipts", receiptBody("ev-payback", "PAYBACK", "49024", ""))
	ts.post(t, "/api/v2/receipts", receiptBody("ev-prepay", "SELL", "49020", "FullPrepayment"))
	if a := ts.get(t, "/api/v2/list"); string(a.body) != listOf(0, 1, 2, 3) {
		t.Errorf("list after payback and prepayment = %s", a.body)
	}
}

func TestReceiptDeviceID(t *testing.T) {
	ts := newServer(t, api.Config{})
	ts.post(t, "/api/v2/receipts", `{"id": "a", "data": {"type": "SELL", "deviceId": "from-body"}}`)
	ts.post(t, "/api/v2/receipts", `{"id": "b", "data": {"type": "SELL"}}`)
	ts.post(t, "/api/v2/receipts", `{"id": "c", "data": {"deviceId": "from-body"}}`, "X-Evotor-Device-UUID", "from-header")
	for id, want := range map[string]string{"a": "from-body", "b": "127.0.0.1", "c": "from-header"} {
		r, err := ts.store.Receipt(id)
		if err != nil {
			t.Fatal(err)
		}
		if r.DeviceID != want {
			t.Errorf("receipt %s: device %q, want %q", id, r.DeviceID, want)
		}
	}
}

func TestReceiptBadInput(t *testing.T) {
	ts := newServer(t, api.Config{})
	tests := []struct {
		name, body string
		code       int
		subject    string
	}{
		{"malformed JSON", `{"id": "a", "data": {}`, api.CodeSyntax, "body"},
		{"empty body", ``, api.CodeSyntax, "body"},
		{"trailing garbage", `{"id": "a", "data": {}} x`, api.CodeSyntax, "body"},
		{"array", `[{"id": "a", "data": {}}]`, api.CodeSyntax, "body"},
		{"string", `"receipt"`, api.CodeSyntax, "body"},
		{"number", `42`, api.CodeSyntax, "body"},
		{"null", `null`, api.CodeSyntax, "body"},
		{"missing id", `{"data": {}}`, api.CodeMissingField, "id"},
		{"null id", `{"id": null, "data": {}}`, api.CodeMissingField, "id"},
		{"empty id", `{"id": "", "data": {}}`, api.CodeMissingField, "id"},
		{"numeric id", `{"id": 12345, "data": {}}`, api.CodeSyntax, "id"},
		{"object id", `{"id": {"a": 1}, "data": {}}`, api.CodeSyntax, "id"},
		{"id in other case", `{"ID": "a", "data": {}}`, api.CodeMissingField, "id"},
		{"missing data", `{"id": "a"}`, api.CodeMissingField, "data"},
		{"null data", `{"id": "a", "data": null}`, api.CodeMissingField, "data"},
		{"data array", `{"id": "a", "data": [1]}`, api.CodeSyntax, "data"},
		{"data string", `{"id": "a", "data": "SELL"}`, api.CodeSyntax, "data"},
		{"data in other case", `{"id": "a", "Data": {}}`, api.CodeMissingField, "data"},
	}
	for _, tt := range tests {
		wantError(t, tt.name, ts.post(t, "/api/v2/receipts", tt.body), 400, tt.code, tt.subject)
	}
	if st, _ := ts.store.Stats(); st.Receipts != 0 {
		t.Errorf("bad receipts were stored: %+v", st)
	}
}

func bigReceipt(size int) string {
	head, tail := `{"id": "big", "data": {"pad": "`, `"}}`
	return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
}

func TestReceiptTooLarge(t *testing.T) {
	ts := newServer(t, api.Config{})
	over := bigReceipt(shopbridge.MaxBody + 1)
	wantError(t, "with Content-Length", ts.post(t, "/api/v2/receipts", over), 413, api.CodeTooLarge, "body")

	// Chunked: no Content-Length, the limit bites while reading.
	req, _ := http.NewRequest("POST", ts.URL+"/api/v2/receipts", io.MultiReader(strings.NewReader(over)))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, "chunked", answer{resp.StatusCode, resp.Header, b}, 413, api.CodeTooLarge, "body")
	if _, err := ts.store.Receipt("big"); err == nil {
		t.Error("an oversized receipt was stored")
	}

	// Exactly 1 MiB is fine, chunked or not.
	exact := bigReceipt(shopbridge.MaxBody)
	if a := ts.post(t, "/api/v2/receipts", exact); a.status != 200 {
		t.Errorf("1 MiB receipt = %d %s", a.status, a.body)
	}
	req, _ = http.NewRequest("POST", ts.URL+"/api/v2/receipts", io.MultiReader(strings.NewReader(exact)))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	resp, err = ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("1 MiB chunked duplicate = %d", resp.StatusCode)
	}
	if r, err := ts.store.Receipt("big"); err != nil || len(r.Body) != shopbridge.MaxBody {
		t.Errorf("1 MiB receipt stored: %v", err)
	}
}

// TestReceiptsSurviveReopen: the 200 means durable, so a store reopened
// right after still has the receipt.
func TestReceiptsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/" + storage.FileName
	s, err := storage.Open(path, storage.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, api.Config{Store: s})
	body := receiptBody("ev-durable", "SELL", "", "")
	if a := ts.post(t, "/api/v2/receipts", body); a.status != 200 {
		t.Fatal(a.status)
	}
	ts.Close()
	s.Close()
	s, err = storage.Open(path, storage.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.Receipt("ev-durable"); err != nil || string(r.Body) != body {
		t.Errorf("after reopen: %v", err)
	}
}
