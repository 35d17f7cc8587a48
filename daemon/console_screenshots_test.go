package daemon_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/browser"
)

// TestConsoleScreenshots writes the README's screenshots of the console
// into $SHOPBRIDGE_SCREENSHOTS (make screenshots): a daemon syncing the
// simulator's fixture bills, with settled bills, one bill paid twice, one
// receipt parked by a 400 and an outage with receipts waiting.
func TestConsoleScreenshots(t *testing.T) {
	out := os.Getenv("SHOPBRIDGE_SCREENSHOTS")
	if out == "" {
		t.Skip("screenshots are written only with SHOPBRIDGE_SCREENSHOTS=DIR (make screenshots)")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	sim, d := startConsoleStack(t, []string{"SHOPBRIDGE_ADMIN_TOKEN=screenshot-token", "SHOPBRIDGE_NAME=Магазин на Ленина"})

	// One receipt parked by the upstream's 400.
	sim.fault(t, crmsim.Fault{Mode: crmsim.Fault400, Kind: crmsim.KindReceipts})
	postReceipt(t, d, receiptBody("6a1f0c2e-0b7d-4e55-9a0e-2f4c8d1b7e01", "48983", "SELL", "FullSettlement"))
	waitUntil(t, "the receipt parked", 30*time.Second, func() bool { return overview(t, d).Parked == 1 })
	sim.fault(t, crmsim.Fault{})
	// Settled bills, a prepayment, and bill 49040 paid twice.
	for _, r := range []struct{ id, bill, method string }{
		{"0c9e7a52-3f41-4c8e-b1d2-5a6f7e8d9c01", "206929", "FullSettlement"},
		{"1d8f6b43-2e50-4d9f-a0c1-6b7e8f9a0b12", "49024", "FullPrepayment"},
		{"2e7a5c34-1d6f-4e0a-b9d2-7c8f9a0b1c23", "49040", "FullSettlement"},
		{"3f6b4d25-0c7e-4f1b-a8e3-8d9a0b1c2d34", "49040", ""},
		{"4a5c3e16-9b8d-4a2c-b7f4-9e0b1c2d3e45", "206917", "FullSettlement"},
	} {
		postReceipt(t, d, receiptBody(r.id, r.bill, "SELL", r.method))
	}
	waitUntil(t, "the receipts delivered", 30*time.Second, func() bool { return overview(t, d).Outbox == 0 })
	// An outage with two receipts waiting.
	sim.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	postReceipt(t, d, receiptBody("5b4d2f07-8a9e-4b3d-a6f5-0f1c2d3e4f56", "49020", "SELL", "FullSettlement"))
	postReceipt(t, d, receiptBody("6c3e1a98-7f0a-4c4e-b5a6-1a2d3e4f5a67", "48957", "SELL", ""))
	waitUntil(t, "the upstream offline", 60*time.Second, func() bool { return overview(t, d).Upstream == "offline" })

	shots := []struct {
		name, lang, path, ready string
	}{
		{"overview", "ru", "/admin/", `document.querySelector('[data-testid="upstream-state"]').dataset.state === 'offline' && document.querySelector('[data-testid="parked-row"]')`},
		{"overview-en", "en", "/admin/", `document.querySelector('[data-testid="upstream-state"]').dataset.state === 'offline' && document.querySelector('[data-testid="parked-row"]')`},
		{"journal", "ru", "/admin/journal", `document.querySelectorAll('[data-testid="journal-row"]').length > 5`},
		{"bills", "ru", "/admin/bills?date=2026-03-22&bill=49040", `document.querySelector('[data-testid="bill-row"]') && document.querySelector('[data-testid="receipt-row"]')`},
		{"login", "ru", "/admin/login", `document.querySelector('[data-testid="login-form"]')`},
	}
	total := 0
	for _, lang := range []string{"ru", "en"} {
		tb := openTab(t, browser.Options{Lang: lang, Width: 1200, Height: 800})
		for _, s := range shots {
			if s.lang != lang {
				continue
			}
			tb.open(d.base + s.path)
			tb.waitJS(s.name+" ready for its screenshot", s.ready, 30*time.Second)
			time.Sleep(300 * time.Millisecond) // fonts and the last paint
			n := screenshot(t, tb, filepath.Join(out, "console-"+s.name+".png"))
			total += n
			t.Logf("console-%s.png: %d bytes", s.name, n)
		}
		tb.noProblems()
	}
	t.Logf("%d bytes of screenshots in %s", total, out)
}

// screenshot saves the viewport as a PNG, re-encoded at the best
// compression, and returns its size.
func screenshot(t *testing.T, tb *tab, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}
