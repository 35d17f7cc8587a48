package browser_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/shopbridge/shopbridge/internal/browser"
)

// TestStartStop loads a page from a loopback server, reads what the page's
// script wrote, and checks that Stop leaves no chromium process behind.
func TestStartStop(t *testing.T) {
	path := browser.Need(t)
	langs := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case langs <- r.Header.Get("Accept-Language"):
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>t</title><p id=out></p><script>document.getElementById('out').textContent = 'ran ' + navigator.language</script>`))
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "profile")
	b, err := browser.Start(t.Context(), path, dir, browser.Options{Lang: "ru"})
	if err != nil {
		t.Fatal(err)
	}
	var text string
	err = chromedp.Do(b.Ctx, chromedp.Navigate(srv.URL))
	if err == nil {
		text, err = chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS("#out")))
	}
	if err != nil {
		b.Stop()
		t.Fatalf("%v\n%s", err, b.Output())
	}
	if text != "ran ru" {
		t.Errorf("page says %q, want %q (the script ran with --lang=ru)", text, "ran ru")
	}
	if al := <-langs; !strings.HasPrefix(al, "ru") {
		t.Errorf("Accept-Language %q, want ru first", al)
	}
	if browser.Running(dir) == 0 {
		t.Error("no process runs with the profile directory while the browser is open: the leftover check would find nothing")
	}
	b.Stop()
	if n := browser.Running(dir); n != 0 {
		t.Errorf("%d chromium processes still run after Stop", n)
	}
}
