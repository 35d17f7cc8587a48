package sync

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/journaltest"
	"github.com/shopbridge/shopbridge/storage"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig is a Config for a quick test against sim.
func testConfig(sim *crmsim.Server, j *journaltest.Journal) Config {
	return Config{
		URL:                sim.URL(),
		Interval:           200 * time.Millisecond,
		Timeout:            500 * time.Millisecond,
		ReadThroughTimeout: 500 * time.Millisecond,
		MaxBody:            1 << 20,
		Journal:            j,
		Logger:             quietLogger(),
	}
}

// MustOpenSyncer opens a syncer and closes it when the test ends.
func MustOpenSyncer(tb testing.TB, cfg Config, st *storage.Store) *Syncer {
	tb.Helper()
	s := New(cfg, st)
	if err := s.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// receipt builds a receipt event as a register would send it.
func receipt(n int, device, billID, typ string) *shopbridge.Receipt {
	extras := "{}"
	if billID != "" {
		extras = fmt.Sprintf(`{"billId": %q}`, billID)
	}
	body := fmt.Sprintf(`{"id": "evt-%06d", "timestamp": %d, "type": "ReceiptCreated", "data": {"type": %q, "deviceId": %q, "totalAmount": 4604.04, "extras": %s}}`,
		n, 1774000000000+int64(n), typ, device, extras)
	return &shopbridge.Receipt{
		EventID:    fmt.Sprintf("evt-%06d", n),
		Body:       []byte(body),
		Headers:    map[string]string{"X-Evotor-Device-Uuid": device, "X-Evotor-Store-Uuid": "store-1", "X-Evotor-User-Id": "user-7"},
		ReceivedAt: time.Now(),
		Type:       typ,
		BillID:     billID,
		DeviceID:   device,
	}
}

func accept(tb testing.TB, st *storage.Store, r *shopbridge.Receipt) {
	tb.Helper()
	if _, err := st.AcceptReceipt(r); err != nil {
		tb.Fatal(err)
	}
}

// delivered returns the receipts the simulator answered with a 200, by
// event id, and fails the test on a duplicate delivery.
func deliveredOnce(tb testing.TB, rs []crmsim.Receipt) map[string]crmsim.Receipt {
	tb.Helper()
	out := map[string]crmsim.Receipt{}
	for _, r := range rs {
		if !r.Delivered {
			continue
		}
		if _, dup := out[r.EventID]; dup {
			tb.Errorf("receipt %s delivered twice", r.EventID)
		}
		out[r.EventID] = r
	}
	return out
}

func simGet(tb testing.TB, sim *crmsim.Server, path string) []byte {
	tb.Helper()
	resp, err := http.Get(sim.URL() + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func waitCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
