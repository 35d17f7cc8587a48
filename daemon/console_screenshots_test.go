package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/browser"
	"github.com/shopbridge/shopbridge/internal/poll"
)

// TestConsoleScreenshots writes the README's screenshots of the console
// into $SHOPBRIDGE_SCREENSHOTS (make screenshots): a daemon syncing the
// simulator's fixture bills, two registers asking for bills and sending
// receipts, bills settled, one paid twice, one receipt parked by a 400 and,
// for the overview, an outage with receipts waiting.
func TestConsoleScreenshots(t *testing.T) {
	out := os.Getenv("SHOPBRIDGE_SCREENSHOTS")
	if out == "" {
		t.Skip("screenshots are written only with SHOPBRIDGE_SCREENSHOTS=DIR (make screenshots)")
	}
	browser.Need(t)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	sim, d := startConsoleStack(t, []string{"SHOPBRIDGE_ADMIN_TOKEN=screenshot-token", "SHOPBRIDGE_NAME=Магазин на Ленина"})

	// One receipt parked by the upstream's 400.
	sim.fault(t, crmsim.Fault{Mode: crmsim.Fault400, Kind: crmsim.KindReceipts})
	postReceipt(t, d, billReceipt(t, d, consoleRegister, "6a1f0c2e-0b7d-4e55-9a0e-2f4c8d1b7e01", "48983", "FullSettlement"))
	poll.Until(t, "the receipt parked", 30*time.Second, func() bool { return overview(t, d).Parked == 1 })
	sim.fault(t, crmsim.Fault{})
	// Two registers: what they ask before a sale, then the receipt.
	// Settled bills, a prepayment, and bill 49040 paid twice.
	registers := []string{"20251202-AA8B-407D-80BF-6A1B2C3D4E01", "20251202-AA8B-407D-80BF-6A1B2C3D4E02"}
	for i, r := range []struct{ id, bill, method string }{
		{"0c9e7a52-3f41-4c8e-b1d2-5a6f7e8d9c01", "206929", "FullSettlement"},
		{"1d8f6b43-2e50-4d9f-a0c1-6b7e8f9a0b12", "49024", "FullPrepayment"},
		{"2e7a5c34-1d6f-4e0a-b9d2-7c8f9a0b1c23", "49040", "FullSettlement"},
		{"3f6b4d25-0c7e-4f1b-a8e3-8d9a0b1c2d34", "49040", ""},
		{"4a5c3e16-9b8d-4a2c-b7f4-9e0b1c2d3e45", "206917", "FullSettlement"},
	} {
		hdr := map[string]string{"X-Evotor-Device-UUID": registers[i%2], "X-Evotor-Store-Uuid": "20240110-6C1F-40F8-8042-3D9C3D4B6E2A"}
		for _, p := range []string{"/api/v2/hello", "/api/v2/list?date=today", "/api/v2/list", "/api/v2/bill/byid/" + r.bill} {
			if status, b, _ := do(t, "GET", d.Base+p, nil, hdr); status != 200 {
				t.Fatalf("GET %s: %d %s", p, status, b)
			}
		}
		hdr["Content-Type"] = "application/json"
		if status, b, _ := do(t, "POST", d.Base+"/api/v2/receipts", billReceipt(t, d, registers[i%2], r.id, r.bill, r.method), hdr); status != 200 {
			t.Fatalf("POST receipt: %d %s", status, b)
		}
	}
	poll.Until(t, "the receipts delivered", 30*time.Second, func() bool { return overview(t, d).Outbox == 0 })

	total := 0
	// shoot opens path, waits for ready, runs then (if any) and saves the
	// screenshot.
	shoot := func(tb *tab, name, path, ready string, height int, then func()) {
		t.Helper()
		tb.open(d.Base + path)
		tb.waitJS(name+" ready for its screenshot", ready, 30*time.Second)
		if then != nil {
			then()
		}
		time.Sleep(300 * time.Millisecond) // the last paint
		n := screenshot(t, tb, filepath.Join(out, "console-"+name+".png"), height)
		total += n
		t.Logf("console-%s.png: %d bytes", name, n)
	}
	ru := openTab(t, browser.Options{Lang: "ru", Width: 1280, Height: 1000})
	// One register's exchanges (and their push upstream), its last
	// receipt's body unfolded.
	shoot(ru, "journal", "/admin/journal?terminal="+registers[0], `document.querySelectorAll('[data-testid="journal-row"]').length > 5`, 0, func() {
		ru.click(tid("journal-row") + `[data-kind="RECEIPT"] ` + tid("journal-request") + ` summary`)
		ru.waitJS("the receipt's body unfolded", `document.querySelector('[data-testid="journal-row"][data-kind="RECEIPT"] [data-testid="journal-request"] pre').textContent.length > 0`, 30*time.Second)
		eval[chromedp.Void](ru, `window.scrollTo(0, 0)`)
	})
	shoot(ru, "bills", "/admin/bills?date=2026-03-22&bill=49040", `document.querySelector('[data-testid="bill-row"]') && document.querySelector('[data-testid="receipt-row"]')`, -1, nil)
	shoot(ru, "login", "/admin/login", `document.querySelector('[data-testid="login-form"]')`, 440, nil)

	// An outage with two receipts waiting, for the overview.
	sim.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	postReceipt(t, d, billReceipt(t, d, consoleRegister, "5b4d2f07-8a9e-4b3d-a6f5-0f1c2d3e4f56", "49020", "FullSettlement"))
	postReceipt(t, d, billReceipt(t, d, consoleRegister, "6c3e1a98-7f0a-4c4e-b5a6-1a2d3e4f5a67", "48957", ""))
	poll.Until(t, "the upstream offline", 60*time.Second, func() bool { return overview(t, d).Upstream == "offline" })
	offline := `document.querySelector('[data-testid="upstream-state"]').dataset.state === 'offline' && document.querySelector('[data-testid="parked-row"]') && document.querySelector('[data-testid="outbox-count"]').dataset.count === '2'`
	shoot(ru, "overview", "/admin/", offline, -1, nil)
	ru.noProblems()
	en := openTab(t, browser.Options{Lang: "en", Width: 1280, Height: 1000})
	shoot(en, "overview-en", "/admin/", offline, -1, nil)
	en.noProblems()
	t.Logf("%d bytes of screenshots in %s", total, out)
}

// billReceipt is a register's receipt for a bill as Evotor sends it: the
// bill's products as items, its number, its sum.
func billReceipt(t *testing.T, d *proc, device, id, billID, method string) []byte {
	t.Helper()
	status, body, _ := do(t, "GET", d.Base+"/api/v2/bill/byid/"+billID, nil, map[string]string{"X-Evotor-Device-UUID": device})
	if status != 200 {
		t.Fatalf("bill %s: %d %s", billID, status, body)
	}
	var bill struct {
		Number   string      `json:"number"`
		Summ     json.Number `json:"summ"`
		Products []struct {
			ID       any         `json:"id"`
			Prodname string      `json:"prodname"`
			Price    json.Number `json:"price"`
			Quantity json.Number `json:"quantity"`
			Unitname string      `json:"unitname"`
		} `json:"products"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&bill); err != nil {
		t.Fatal(err)
	}
	type item struct {
		ID          string      `json:"id"`
		Name        string      `json:"name"`
		Price       json.Number `json:"price"`
		Quantity    json.Number `json:"quantity"`
		ItemType    string      `json:"itemType"`
		MeasureName string      `json:"measureName"`
	}
	var items []item
	for _, p := range bill.Products {
		items = append(items, item{fmt.Sprint(p.ID), p.Prodname, p.Price, p.Quantity, "NORMAL", p.Unitname})
	}
	type extras struct {
		BillID           string `json:"billId"`
		Number           string `json:"number"`
		SettlementMethod string `json:"settlementMethod,omitempty"`
	}
	type data struct {
		ID          string      `json:"id"`
		Type        string      `json:"type"`
		Items       []item      `json:"items"`
		Extras      extras      `json:"extras"`
		TotalAmount json.Number `json:"totalAmount"`
	}
	b, err := json.Marshal(struct {
		ID        string `json:"id"`
		Data      data   `json:"data"`
		Type      string `json:"type"`
		Version   int    `json:"version"`
		Timestamp int64  `json:"timestamp"`
	}{id, data{"r-" + id[:8], "SELL", items, extras{billID, bill.Number, method}, bill.Summ}, "ReceiptCreated", 2, time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// screenshot saves the viewport (height 0), the whole page (-1) or its top
// height pixels as a PNG with at most 256 colours, which keeps a console
// page small and its text sharp, and returns its size.
func screenshot(t *testing.T, tb *tab, path string, height int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	shot := chromedp.CaptureScreenshot()
	if height < 0 {
		shot = chromedp.FullScreenshot(100) // 100: PNG
	}
	raw, err := chromedp.Run(ctx, shot)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); height > 0 && height < b.Dy() {
		img = img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(image.Rect(b.Min.X, b.Min.Y, b.Max.X, b.Min.Y+height))
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, quantize(img)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

// quantize maps img onto its 256 most frequent colours, each other colour
// to the nearest of them. A page is mostly flat colours; what is lost is in
// the anti-aliased edges of text, where the nearest colour is close.
func quantize(img image.Image) *image.Paletted {
	b := img.Bounds()
	count := map[color.RGBA]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			count[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	cs := make([]color.RGBA, 0, len(count))
	for c := range count {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool {
		if count[cs[i]] != count[cs[j]] {
			return count[cs[i]] > count[cs[j]]
		}
		return fmt.Sprint(cs[i]) < fmt.Sprint(cs[j])
	})
	pal := make(color.Palette, 0, 256)
	for _, c := range cs[:min(256, len(cs))] {
		pal = append(pal, c)
	}
	out := image.NewPaletted(b, pal)
	index := map[color.RGBA]uint8{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			i, ok := index[c]
			if !ok {
				i = uint8(pal.Index(c))
				index[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	return out
}
