package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/browser"
)

// TestBrowserPageCannotPostReceipts: a real headless chromium opens a page
// of another origin (http://localhost:P) whose script posts a receipt to
// shopbridge (http://127.0.0.1:Q) the way an attacker's page would:
// fetch() as a simple no-cors text/plain POST, which needs no preflight,
// and a CORS fetch of the bill list (issue 16.5).
func TestBrowserPageCannotPostReceipts(t *testing.T) {
	path := browser.Need(t)
	ts := newServer(t, api.Config{})
	seed(t, ts.store)
	target := ts.URL // http://127.0.0.1:Q
	body := receiptBody("ev-from-a-page", "SELL", "49024", "FullSettlement")
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>start</title><script>
const target = %q, body = %q;
Promise.allSettled([
  fetch(target + "/api/v2/receipts", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body}),
  fetch(target + "/api/v2/list", {mode: "cors"}),
]).then(() => { document.title = "done"; });
</script>`, target, body)
	}))
	t.Cleanup(evil.Close)
	page := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site than 127.0.0.1

	b, err := browser.Start(context.Background(), path, filepath.Join(t.TempDir(), "profile"), browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })
	ctx, cancel := context.WithTimeout(b.Ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	for {
		title, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.title"))
		if err != nil {
			t.Fatalf("waiting for the page's requests: %v", err)
		}
		if title == "done" {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the page's state, not a guessed wait
	}
	// Both requests reached the server, and both were refused.
	var got []string
	for _, e := range ts.journal.Entries() {
		got = append(got, fmt.Sprintf("%s %s %d", e.Method, e.Path, e.Status))
	}
	want := map[string]bool{"POST /api/v2/receipts 403": false, "GET /api/v2/list 403": false}
	for _, g := range got {
		if _, ok := want[g]; ok {
			want[g] = true
		} else {
			t.Errorf("unexpected exchange: %s", g)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no %s in the journal: %v", k, got)
		}
	}
	if _, err := ts.store.Receipt("ev-from-a-page"); err == nil {
		t.Error("the page's receipt was stored")
	}
	if n := ts.store.OutboxLen(); n != 0 {
		t.Errorf("outbox: %d", n)
	}
}
