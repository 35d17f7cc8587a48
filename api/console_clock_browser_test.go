package api_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/browser"
)

// TestBrowserOverviewClock: the overview, rendered by its script in a real
// headless chromium, shows the PC's clock a year behind the upstream with
// the alert, in English and in Russian, and a clock in step without it.
func TestBrowserOverviewClock(t *testing.T) {
	path := browser.Need(t)
	clock := make(chan *shopbridge.ClockStatus, 1)
	clock <- &shopbridge.ClockStatus{SkewSeconds: 365 * 86400, MeasuredAt: time.Now().Add(-2 * time.Minute), OK: false, MaxSeconds: 120}
	ts := newServer(t, api.Config{BriefStatus: func() api.Status {
		c := <-clock
		clock <- c
		return api.Status{Upstream: shopbridge.UpstreamOnline, Clock: c}
	}})
	b, err := browser.Start(context.Background(), path, filepath.Join(t.TempDir(), "profile"), browser.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop() })
	ctx, cancel := context.WithTimeout(b.Ctx, 2*time.Minute)
	defer cancel()

	// shown polls the page until the clock line reads want, and returns
	// whether the alert is visible and its text.
	shown := func(want string) (bool, string) {
		t.Helper()
		var state string
		for !strings.Contains(state, want) {
			var err error
			state, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="clock-state"]').textContent`))
			if err != nil {
				t.Fatalf("waiting for the clock line %q (last %q): %v", want, state, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the page's state, not a guessed wait
		}
		hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid="clock-alert"]').hidden`))
		if err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="clock-alert"]').innerText`))
		if err != nil {
			t.Fatal(err)
		}
		return !hidden, text
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/admin/?lang=en")); err != nil {
		t.Fatal(err)
	}
	if alert, text := shown("365 days behind the CRM (measured 2 min ago)"); !alert || !strings.Contains(text, "This PC's clock is wrong: 365 days behind the CRM") {
		t.Errorf("English: alert shown %v, %q", alert, text)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/admin/?lang=ru")); err != nil {
		t.Fatal(err)
	}
	if alert, text := shown("отстают от CRM на 365 дн. (измерено 2 мин назад)"); !alert || !strings.Contains(text, "Часы этого ПК идут неверно") {
		t.Errorf("Russian: alert shown %v, %q", alert, text)
	}

	// Corrected: the next refresh drops the alert without a reload.
	<-clock
	clock <- &shopbridge.ClockStatus{SkewSeconds: 0, MeasuredAt: time.Now(), OK: true, MaxSeconds: 120}
	if alert, text := shown("совпадают с CRM"); alert {
		t.Errorf("clock right again, the alert still shows: %q", text)
	}
}
