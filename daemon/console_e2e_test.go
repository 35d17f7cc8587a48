package daemon_test

// End-to-end tests of the admin console (/admin/) in a real headless
// browser: Debian's chromium driven over the DevTools protocol, against the
// real binary (built in TestMain) syncing with the real upstream simulator
// (`shopbridge crmsim`, a separate process whose control listener injects
// the faults). They skip when chromium is missing, and fail then with
// SHOPBRIDGE_STRICT=1 (CI). The data-testid names and the URLs are the
// console's contract (README, Console).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/browser"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/storage"
)

// ---- the upstream simulator and the daemon ----

// consoleSim is a running `shopbridge crmsim`.
type consoleSim struct {
	api string // upstream URL for the daemon
	ctl *crmsim.Control
}

var simLineRE = regexp.MustCompile(`^crmsim api=(\S+) control=(\S+)`)

// startConsoleSim runs the simulator on loopback with its default fixture
// bills (the seed journal's) and waits for the line naming its addresses.
func startConsoleSim(t testing.TB) *consoleSim {
	t.Helper()
	cmd := exec.Command(binary, "crmsim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := simLineRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
			}
		}
	}()
	select {
	case m := <-found:
		return &consoleSim{api: m[1], ctl: &crmsim.Control{URL: m[2]}}
	case <-time.After(20 * time.Second):
		t.Fatal("crmsim did not print its addresses in 20 s")
	}
	return nil
}

func (s *consoleSim) fault(t testing.TB, f crmsim.Fault) {
	t.Helper()
	if err := s.ctl.SetFault(f); err != nil {
		t.Fatal(err)
	}
}

// arrivals returns the simulator's recorded arrivals of receipt id.
func (s *consoleSim) arrivals(t testing.TB, id string) []crmsim.Receipt {
	t.Helper()
	rs, err := s.ctl.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	var out []crmsim.Receipt
	for _, r := range rs {
		if r.EventID == id {
			out = append(out, r)
		}
	}
	return out
}

// startConsoleStack starts the simulator and a daemon syncing with it every
// second, and waits until the daemon calls it online.
func startConsoleStack(t testing.TB, env []string, args ...string) (*consoleSim, *proc) {
	t.Helper()
	s := startConsoleSim(t)
	d := startDaemon(t, t.TempDir(), env, append([]string{"--upstream", s.api, "--sync-interval", "1s"}, args...)...)
	poll.Until(t, "the daemon online with the simulator", 30*time.Second, func() bool { return overview(t, d).Upstream == "online" })
	return s, d
}

// overviewDoc is the part of /admin/api/overview the tests read.
type overviewDoc struct {
	Upstream       string      `json:"upstream"`
	Outbox         int         `json:"outbox"`
	Parked         int         `json:"parked"`
	ParkedReceipts []parkedDoc `json:"parked_receipts"`
	PaidTwiceCount int         `json:"paid_twice_count"`
}

type parkedDoc struct {
	EventID  string `json:"event_id"`
	Answer   string `json:"answer"`
	Attempts int    `json:"attempts"`
}

func isParked(id string) func(parkedDoc) bool {
	return func(p parkedDoc) bool { return p.EventID == id }
}

// overview reads /admin/api/overview as a program on loopback does (no
// Origin, no cookie).
func overview(t testing.TB, d *proc) overviewDoc {
	t.Helper()
	status, body, _ := do(t, "GET", d.Base+"/admin/api/overview", nil, nil)
	if status != 200 {
		t.Fatalf("GET /admin/api/overview: %d %s", status, body)
	}
	var o overviewDoc
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("/admin/api/overview: %v: %s", err, body)
	}
	return o
}

// consoleRegister is the device id of the register postReceipt posts as.
const consoleRegister = "20251202-AA8B-407D-80BF-000000000007"

func postReceipt(t testing.TB, d *proc, body []byte) {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/json", "X-Evotor-Device-UUID": consoleRegister}
	if status, b, _ := do(t, "POST", d.Base+"/api/v2/receipts", body, hdr); status != 200 {
		t.Fatalf("POST receipt: %d %s", status, b)
	}
}

func uniqueID(prefix string) string { return fmt.Sprintf("%s-%08x", prefix, rand.Uint32()) }

// ---- the browser ----

// tab is a chromium tab and what it saw: console messages (calls, uncaught
// exceptions and the browser's own log, where CSP violations go), every
// request sent and every response and navigation.
type tab struct {
	t   *testing.T
	b   *browser.Browser
	ctx context.Context

	mu    sync.Mutex
	msgs  []chromedp.ConsoleMessage
	reqs  []*sentRequest
	byID  map[network.RequestID]*sentRequest
	resps []gotResponse
	navs  []string
}

// sentRequest is a request as it went on the wire: the Origin header and
// the cookies sent come from the network stack's extra info, as chromium
// adds them after the page's request.
type sentRequest struct {
	url, method, origin string
	cookies             []string // names of the cookies sent
}

type gotResponse struct {
	url    string
	status int64
	header map[string]string
}

// openTab starts chromium for one test; it is closed, and any process of
// it left killed, when the test ends. Without chromium the test skips, or
// fails with SHOPBRIDGE_STRICT=1.
func openTab(t *testing.T, o browser.Options) *tab {
	t.Helper()
	path := browser.Need(t)
	dir := filepath.Join(t.TempDir(), "chromium-profile")
	b, err := browser.Start(context.Background(), path, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, b: b, ctx: b.Ctx, byID: map[network.RequestID]*sentRequest{}}
	t.Cleanup(func() {
		if n := b.Stop(); n > 0 {
			t.Logf("killed %d chromium processes left after the browser closed", n)
		}
		if n := browser.Running(dir); n > 0 {
			t.Errorf("%d chromium processes still run after Stop", n)
		}
		if t.Failed() {
			t.Logf("chromium output (tail, without D-Bus noise):\n%s", tail(withoutDBus(b.Output()), 4000))
			t.Logf("console messages:\n%s", tb.messages())
		}
	})
	msgs := chromedp.Console(tb.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.msgs = append(tb.msgs, m)
			tb.mu.Unlock()
		}
	}()
	err = chromedp.Listen(tb.ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			r := tb.request(ev.RequestID)
			r.url, r.method = ev.Request.URL, ev.Request.Method
			if v, ok := ev.Request.Headers["Origin"].(string); ok && r.origin == "" {
				r.origin = v
			}
		case *network.EventRequestWillBeSentExtraInfo:
			r := tb.request(ev.RequestID)
			for k, v := range ev.Headers {
				if s, ok := v.(string); ok && strings.EqualFold(k, "Origin") {
					r.origin = s
				}
			}
			for _, c := range ev.AssociatedCookies {
				if len(c.BlockedReasons) == 0 && c.Cookie != nil {
					r.cookies = append(r.cookies, c.Cookie.Name)
				}
			}
		case *network.EventResponseReceived:
			h := map[string]string{}
			for k, v := range ev.Response.Headers {
				if s, ok := v.(string); ok {
					h[strings.ToLower(k)] = s
				}
			}
			tb.resps = append(tb.resps, gotResponse{url: ev.Response.URL, status: ev.Response.Status, header: h})
		case *page.EventFrameNavigated:
			tb.navs = append(tb.navs, ev.Frame.URL)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// request returns the record of a request by its id, new or seen (the
// extra info may come before or after the request event). Called with
// tb.mu held.
func (tb *tab) request(id network.RequestID) *sentRequest {
	r := tb.byID[id]
	if r == nil {
		r = &sentRequest{}
		tb.byID[id] = r
		tb.reqs = append(tb.reqs, r)
	}
	return r
}

// withoutDBus drops chromium's complaints about the missing D-Bus, which
// every headless start here prints.
func withoutDBus(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "dbus") && !strings.Contains(l, "DBus") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// tid is the CSS selector of a data-testid.
func tid(name string) string { return `[data-testid="` + name + `"]` }

// jsq is a JavaScript string literal.
func jsq(s string) string { b, _ := json.Marshal(s); return string(b) }

// open navigates to url and waits for the load event.
func (tb *tab) open(u string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		tb.t.Fatalf("open %s: %v", u, err)
	}
}

// eval runs a JavaScript expression in the page and decodes its value.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true. An evaluation
// that fails (the page is between documents) counts as false.
func (tb *tab) waitJS(what, expr string, limit time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			html := eval[string](tb, `document.body ? document.body.innerText.slice(0, 3000) : ''`)
			tb.t.Fatalf("timed out after %v waiting for %s (%s; last error %v); the page says:\n%s", limit, what, expr, err, html)
		}
		time.Sleep(50 * time.Millisecond) // polling the page's state (poll.Until cannot show the page when it gives up)
	}
}

// click clicks the first element matching sel with the mouse, as a person
// would, once it is visible.
func (tb *tab) click(sel string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		tb.t.Fatalf("click %s: %v", sel, err)
	}
}

// typeInto focuses the element and types text into it with key events.
func (tb *tab) typeInto(sel, text string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text)); err != nil {
		tb.t.Fatalf("type into %s: %v", sel, err)
	}
}

func (tb *tab) messages() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	for _, m := range tb.msgs {
		fmt.Fprintf(&b, "  %s [%s] %s (%s:%d)\n", m.Type, m.Source, m.Text, m.URL, m.Line+1)
	}
	return b.String()
}

// problems returns the console errors, exceptions and CSP violations seen
// since message number from.
func (tb *tab) problems(from int) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.msgs[min(from, len(tb.msgs)):] {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException ||
			m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, fmt.Sprintf("%s [%s] %s (%s:%d)", m.Type, m.Source, m.Text, m.URL, m.Line+1))
		}
	}
	return out
}

func (tb *tab) msgCount() int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return len(tb.msgs)
}

// consoleBarrier logs a marker from the page and waits until the tab has
// seen it: console messages, exceptions and the browser's log (CSP
// violations) come on one stream in order, so whatever the page said
// before is in tb.msgs by then.
func (tb *tab) consoleBarrier() {
	tb.t.Helper()
	marker := uniqueID("barrier")
	eval[bool](tb, `console.log(`+jsq(marker)+`), true`)
	poll.Until(tb.t, "the console marker "+marker, 30*time.Second, func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return slices.ContainsFunc(tb.msgs, func(m chromedp.ConsoleMessage) bool { return m.Text == marker })
	})
}

// journalRequests counts the requests of the journal page's live tail
// (after=) or of its pages (no after=) sent since request number from,
// and returns the highest after= asked for.
func (tb *tab) journalRequests(base string, from int, tail bool) (n, after int) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, r := range tb.reqs[min(from, len(tb.reqs)):] {
		if !strings.HasPrefix(r.url, base+"/admin/api/journal/page?") {
			continue
		}
		u, err := url.Parse(r.url)
		if err != nil {
			continue
		}
		a, err := strconv.Atoi(u.Query().Get("after"))
		if (err == nil) != tail {
			continue
		}
		n++
		after = max(after, a)
	}
	return n, after
}

func (tb *tab) reqCount() int {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return len(tb.reqs)
}

// noProblems fails the test for any console error, exception or CSP
// violation the tab saw, but for failed loads (chromium logs each 4xx as an
// error) of the URLs given, which the test provoked.
func (tb *tab) noProblems(provoked ...string) {
	tb.t.Helper()
	tb.mu.Lock()
	var ignore []string
	for _, m := range tb.msgs {
		if m.Source == "network" && slices.Contains(provoked, m.URL) {
			ignore = append(ignore, fmt.Sprintf("%s [%s] %s (%s:%d)", m.Type, m.Source, m.Text, m.URL, m.Line+1))
		}
	}
	tb.mu.Unlock()
	for _, p := range tb.problems(0) {
		if !slices.Contains(ignore, p) {
			tb.t.Errorf("browser console: %s", p)
		}
	}
}

// responsesTo returns the responses whose URL starts with prefix.
func (tb *tab) responsesTo(prefix string) []gotResponse {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []gotResponse
	for _, r := range tb.resps {
		if strings.HasPrefix(r.url, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// ---- the tests ----

// TestConsoleOverviewShowsOutage: the overview shows the upstream online;
// when the simulator refuses connections the page, refreshing by itself
// (no reload), shows it offline and the receipt waiting in the outbox, and
// online again once the simulator is back.
func TestConsoleOverviewShowsOutage(t *testing.T) {
	browser.Need(t)
	sim, d := startConsoleStack(t, nil)
	tb := openTab(t, browser.Options{Lang: "en"})
	tb.open(d.Base + "/admin/")
	state := `document.querySelector('` + tid("upstream-state") + `').dataset.state`
	tb.waitJS("the overview showing the upstream online", state+` === 'online'`, 30*time.Second)
	refreshMS := eval[int](tb, `+document.body.dataset.refreshMs`)
	if refreshMS != 2000 {
		t.Errorf("data-refresh-ms = %d, want the documented 2000", refreshMS)
	}
	if txt := eval[string](tb, `document.querySelector('`+tid("version")+`').textContent.trim()`); txt == "" {
		t.Error("the overview shows no version")
	}
	// A mark on the window survives only if the page updates in place.
	eval[chromedp.Void](tb, `window.__sameDocument = 1`)
	refreshes := `+document.querySelector('` + tid("overview-updated") + `').dataset.refreshes`
	before := eval[int](tb, refreshes)

	sim.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	id := uniqueID("outage")
	postReceipt(t, d, receiptBody(id, "49040", "SELL", "FullSettlement"))
	poll.Until(t, "the daemon to call the upstream offline", 60*time.Second, func() bool { return overview(t, d).Upstream == "offline" })
	apiOffline := time.Now()
	tb.waitJS("the overview showing the upstream offline", state+` === 'offline'`, 30*time.Second)
	t.Logf("the page showed offline %v after the API did (it refreshes every %d ms)", time.Since(apiOffline).Round(time.Millisecond), refreshMS)
	tb.waitJS("the outbox count showing the waiting receipt", `document.querySelector('`+tid("outbox-count")+`').dataset.count === '1'`, 30*time.Second)
	if txt := eval[string](tb, `document.querySelector('`+tid("outbox-oldest")+`').textContent.trim()`); txt == "" || txt == "—" {
		t.Errorf("outbox-oldest shows %q with a receipt waiting", txt)
	}
	if eval[int](tb, `window.__sameDocument || 0`) != 1 {
		t.Error("the overview reloaded the whole page instead of refreshing in place")
	}
	if after := eval[int](tb, refreshes); after <= before {
		t.Errorf("data-refreshes went from %d to %d across the outage", before, after)
	}

	sim.fault(t, crmsim.Fault{})
	tb.waitJS("the overview showing the upstream online again", state+` === 'online'`, 60*time.Second)
	tb.waitJS("the outbox drained", `document.querySelector('`+tid("outbox-count")+`').dataset.count === '0'`, 30*time.Second)
	if n := len(sim.arrivals(t, id)); n == 0 {
		t.Errorf("the receipt queued during the outage never reached the simulator")
	}
	if eval[bool](tb, `!document.querySelector('`+tid("console-error")+`') || document.querySelector('`+tid("console-error")+`').hidden`) != true {
		t.Error("the refresh-failed banner shows while the daemon answers")
	}
	tb.noProblems()
}

// TestConsoleParkedRetry: a receipt the simulator refuses with a 400 is
// parked; the overview lists it with the upstream's answer; its Retry
// button, with the simulator healed, delivers it and it leaves the list.
func TestConsoleParkedRetry(t *testing.T) {
	browser.Need(t)
	sim, d := startConsoleStack(t, nil)
	sim.fault(t, crmsim.Fault{Mode: crmsim.Fault400, Kind: crmsim.KindReceipts})
	id := uniqueID("parked")
	body := receiptBody(id, "49024", "SELL", "FullSettlement")
	postReceipt(t, d, body)
	poll.Until(t, "the receipt parked", 30*time.Second, func() bool { return overview(t, d).Parked == 1 })

	tb := openTab(t, browser.Options{Lang: "en"})
	tb.open(d.Base + "/admin/")
	row := tid("parked-row") + `[data-event-id=` + jsq(id) + `]`
	tb.waitJS("the parked receipt listed", `document.querySelector('`+row+`')`, 30*time.Second)
	answer := eval[string](tb, `document.querySelector('`+row+` `+tid("parked-answer")+`').textContent`)
	// The simulator's 400 body: {"errors":[{"code":2001,"reason":"simulated bad request",...}]}.
	if !strings.Contains(answer, "simulated bad request") {
		t.Errorf("parked answer shows %q, want the upstream's answer (simulated bad request)", answer)
	}
	if got := eval[string](tb, `document.querySelector('`+tid("parked-count")+`').textContent`); !strings.Contains(got, "1") {
		t.Errorf("parked-count shows %q with one receipt parked", got)
	}
	if arr := sim.arrivals(t, id); len(arr) != 1 || arr[0].Status != 400 {
		t.Fatalf("before the retry the simulator saw %d arrivals of %s, want one answered 400", len(arr), id)
	}

	sim.fault(t, crmsim.Fault{})
	tb.click(row + ` ` + tid("parked-retry"))
	tb.waitJS("the retried receipt to leave the parked list", `!document.querySelector('`+row+`')`, 30*time.Second)
	poll.Until(t, "the simulator to receive the retried receipt", 30*time.Second, func() bool {
		arr := sim.arrivals(t, id)
		return len(arr) == 2 && arr[1].Delivered
	})
	if arr := sim.arrivals(t, id); !bytes.Equal(arr[1].Body, body) {
		t.Errorf("the retried receipt reached the simulator as %s, want the bytes the register sent", arr[1].Body)
	}
	if o := overview(t, d); o.Parked != 0 || o.Outbox != 0 {
		t.Errorf("after the retry: parked %d outbox %d, want 0 and 0", o.Parked, o.Outbox)
	}
	tb.waitJS("the empty parked list", `document.querySelector('`+tid("parked-empty")+`') && !document.querySelector('`+tid("parked-empty")+`').hidden`, 30*time.Second)
	tb.noProblems()
}

// journalSeqs returns the seqs of the journal entries of kind whose request
// mentions needle, from the daemon's plain journal endpoint: what the
// console's filter must find, worked out without the console.
func journalSeqs(t testing.TB, d *proc, kind, needle string) []int {
	t.Helper()
	status, body, _ := do(t, "GET", d.Base+"/admin/api/journal?kind="+kind+"&limit=100000", nil, nil)
	if status != 200 {
		t.Fatalf("GET /admin/api/journal: %d %s", status, body)
	}
	var rows []struct {
		Seq     int             `json:"seq"`
		Request json.RawMessage `json:"request"`
	}
	if err := json.Unmarshal(body, &rows); err != nil {
		t.Fatal(err)
	}
	var seqs []int
	for _, r := range rows {
		if bytes.Contains(r.Request, []byte(needle)) {
			seqs = append(seqs, r.Seq)
		}
	}
	return seqs
}

// rowSeqs returns the data-seq of every journal row on the page.
func rowSeqs(tb *tab) []int {
	return eval[[]int](tb, `[...document.querySelectorAll('`+tid("journal-row")+`')].map(r => +r.dataset.seq)`)
}

// TestConsoleJournalFilter: three receipts; the journal's text filter with
// one's event id finds that receipt's terminal row (and its push upstream,
// which carries the same id) and none of the others'; with the kind filter
// too it finds exactly the one row. The live tail shows a new receipt.
func TestConsoleJournalFilter(t *testing.T) {
	browser.Need(t)
	_, d := startConsoleStack(t, nil)
	ids := []string{uniqueID("jf"), uniqueID("jf"), uniqueID("jf")}
	for i, id := range ids {
		postReceipt(t, d, receiptBody(id, fmt.Sprint(48900+i), "SELL", ""))
	}
	var want []int
	poll.Until(t, "the receipts in the journal", 30*time.Second, func() bool {
		want = journalSeqs(t, d, "RECEIPT", ids[1])
		return len(want) == 1
	})

	tb := openTab(t, browser.Options{Lang: "en"})
	tb.open(d.Base + "/admin/journal")
	tb.waitJS("journal rows", `document.querySelector('`+tid("journal-row")+`')`, 30*time.Second)

	// The live tail (on by default) brings a receipt posted now.
	live := uniqueID("live")
	postReceipt(t, d, receiptBody(live, "48950", "SELL", ""))
	var liveSeq []int
	poll.Until(t, "the live receipt in the journal", 30*time.Second, func() bool {
		liveSeq = journalSeqs(t, d, "RECEIPT", live)
		return len(liveSeq) == 1
	})
	tb.waitJS("the live tail showing the new receipt", fmt.Sprintf(`document.querySelector('%s[data-seq="%d"]')`, tid("journal-row"), liveSeq[0]), 30*time.Second)

	// Text alone: the terminal's row and the push upstream, nothing else.
	tb.typeInto(tid("journal-filter-text"), ids[1])
	tb.click(tid("journal-filter-apply"))
	tb.waitJS("the filter to leave only rows of "+ids[1], fmt.Sprintf(
		`(() => { const rows = [...document.querySelectorAll('%s')];
		  return rows.length > 0 && rows.some(r => +r.dataset.seq === %d) && rows.every(r => r.dataset.kind === 'RECEIPT' || r.dataset.kind === 'UPSTREAM_RECEIPT') })()`,
		tid("journal-row"), want[0]), 30*time.Second)
	others := append(journalSeqs(t, d, "RECEIPT", ids[0]), journalSeqs(t, d, "RECEIPT", ids[2])...)
	for _, s := range rowSeqs(tb) {
		if slices.Contains(others, s) || s == liveSeq[0] {
			t.Errorf("the filter %q shows row %d of another receipt", ids[1], s)
		}
	}
	kinds := eval[[]string](tb, `[...document.querySelectorAll('`+tid("journal-row")+`')].map(r => r.dataset.kind)`)
	if !slices.Contains(kinds, "RECEIPT") {
		t.Errorf("the text filter shows kinds %v, want the terminal's RECEIPT row", kinds)
	}

	// Kind RECEIPT too: exactly that one row.
	selectKind := `(() => { const s = document.querySelector('` + tid("journal-filter-kind") + `'); s.value = 'RECEIPT'; s.dispatchEvent(new Event('change', {bubbles: true})); return s.value })()`
	if v := eval[string](tb, selectKind); v != "RECEIPT" {
		t.Fatalf("the kind filter has no RECEIPT option (value %q)", v)
	}
	tb.click(tid("journal-filter-apply"))
	tb.waitJS("the filters to leave one row", fmt.Sprintf(
		`(() => { const rows = [...document.querySelectorAll('%s')]; return rows.length === 1 && +rows[0].dataset.seq === %d })()`,
		tid("journal-row"), want[0]), 30*time.Second)
	// Stays one: a late page or the live tail must not add rows that do
	// not match. A receipt that matches neither filter, posted now, is
	// the barrier: once the live tail asks for entries after it, an
	// answer that knew of it has been shown (the tail asks again only
	// after showing its last answer, and no request is in flight), so a
	// row the filters should have kept out would be on the page.
	late := uniqueID("late")
	postReceipt(t, d, receiptBody(late, "48951", "SELL", ""))
	var lateSeq []int
	poll.Until(t, "the late receipt in the journal", 30*time.Second, func() bool {
		lateSeq = journalSeqs(t, d, "RECEIPT", late)
		return len(lateSeq) == 1
	})
	poll.Until(t, "the live tail to ask past the late receipt", 60*time.Second, func() bool {
		_, after := tb.journalRequests(d.Base, 0, true)
		return after >= lateSeq[0]
	})
	if got := rowSeqs(tb); !slices.Equal(got, want) {
		t.Errorf("kind RECEIPT + text %s shows rows %v, want exactly %v", ids[1], got, want)
	}
	rowText := eval[string](tb, `document.querySelector('`+tid("journal-row")+`').textContent`)
	if !strings.Contains(rowText, ids[1]) || !strings.Contains(rowText, "/api/v2/receipts") {
		t.Errorf("the row reads %q, want the event id and the path", rowText)
	}
	tb.noProblems()
}

// navTexts is the text of the three navigation links.
const navTexts = `['nav-overview','nav-journal','nav-bills'].map(n => document.querySelector('[data-testid="' + n + '"]').textContent.trim())`

var cyrillic = regexp.MustCompile(`\p{Cyrillic}`)

// checkLang checks that the page rendered in lang: the html element says so
// and the navigation reads in that script.
func checkLang(t *testing.T, tb *tab, page, lang string) {
	t.Helper()
	if got := eval[string](tb, `document.documentElement.lang`); got != lang {
		t.Errorf("%s: <html lang=%q>, want %q", page, got, lang)
	}
	for _, s := range eval[[]string](tb, navTexts) {
		if s == "" || cyrillic.MatchString(s) != (lang == "ru") {
			t.Errorf("%s in %s: navigation link %q", page, lang, s)
		}
	}
}

// TestConsoleLanguages: Russian when the browser asks for neither Russian
// nor English and when it asks for Russian; English for Accept-Language en;
// the switch changes the language and the choice sticks across pages.
func TestConsoleLanguages(t *testing.T) {
	browser.Need(t)
	_, d := startConsoleStack(t, nil)
	pages := []string{"/admin/", "/admin/journal", "/admin/bills"}
	for _, c := range []struct{ accept, want string }{{"de", "ru"}, {"ru", "ru"}, {"en", "en"}} {
		t.Run("Accept-Language "+c.accept, func(t *testing.T) {
			tb := openTab(t, browser.Options{Lang: c.accept})
			for _, p := range pages {
				tb.open(d.Base + p)
				checkLang(t, tb, p, c.want)
			}
			tb.noProblems()
		})
	}
	t.Run("switch", func(t *testing.T) {
		tb := openTab(t, browser.Options{Lang: "de"})
		tb.open(d.Base + "/admin/")
		checkLang(t, tb, "/admin/", "ru")
		ru := eval[[]string](tb, navTexts)
		tb.click(tid("lang-en"))
		tb.waitJS("the page in English", `document.documentElement.lang === 'en'`, 30*time.Second)
		checkLang(t, tb, "/admin/ after the switch", "en")
		// The choice sticks: the next page, with no ?lang, is English.
		tb.click(tid("nav-journal"))
		tb.waitJS("the journal page", `location.pathname === '/admin/journal' && document.readyState === 'complete'`, 30*time.Second)
		checkLang(t, tb, "/admin/journal after the switch", "en")
		en := eval[[]string](tb, navTexts)
		if slices.Equal(ru, en) {
			t.Errorf("the navigation reads %v in both languages", en)
		}
		tb.click(tid("lang-ru"))
		tb.waitJS("the page in Russian", `document.documentElement.lang === 'ru'`, 30*time.Second)
		checkLang(t, tb, "/admin/journal after switching back", "ru")
		tb.noProblems()
	})
}

// attackerPage serves, from another origin, a page that posts to the
// daemon's retry endpoint the ways another site can: a form submitted by
// script and a no-cors fetch with credentials.
func attackerPage(t *testing.T, target string) (base string, hits func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>win a prize</title>
<form id=f method=post action=%[1]s><input name=x value=1></form>
<script>
fetch(%[1]s, {method: 'POST', mode: 'no-cors', credentials: 'include', body: 'x=1'})
  .finally(() => { document.title = 'fetched'; document.getElementById('f').submit() })
</script>`, jsq(target))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// crossSitePOST parks a receipt, then has pages from two other origins
// (127.0.0.1 on another port: same site, other origin; localhost: another
// site) post to its retry endpoint; every such POST must get 403 and the
// receipt must stay parked and unsent.
func crossSitePOST(t *testing.T, tb *tab, sim *consoleSim, d *proc) (target string) {
	t.Helper()
	sim.fault(t, crmsim.Fault{Mode: crmsim.Fault400, Kind: crmsim.KindReceipts})
	id := uniqueID("csrf")
	postReceipt(t, d, receiptBody(id, "48983", "SELL", ""))
	poll.Until(t, "the receipt parked", 30*time.Second, func() bool {
		o := overview(t, d)
		return slices.ContainsFunc(o.ParkedReceipts, isParked(id))
	})
	// Healed: a retry that got through would deliver it.
	sim.fault(t, crmsim.Fault{})
	target = d.Base + "/admin/api/outbox/" + url.PathEscape(id) + "/retry"
	attacker, hits := attackerPage(t, target)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(attacker, "http://"))
	for _, origin := range []string{attacker, "http://localhost:" + port} {
		before := len(tb.responsesTo(target))
		tb.open(origin + "/")
		tb.waitJS("the attacker's form to post", `location.href.startsWith(`+jsq(d.Base)+`)`, 30*time.Second)
		poll.Until(t, "both cross-site POSTs answered", 30*time.Second, func() bool { return len(tb.responsesTo(target)) >= before+2 })
		for _, r := range tb.responsesTo(target)[before:] {
			if r.status != 403 {
				t.Errorf("a POST from %s to the retry endpoint got %d, want 403", origin, r.status)
			}
		}
	}
	if hits() < 2 {
		t.Fatalf("the attacker's page was served %d times, want 2: the test did not run", hits())
	}
	tb.mu.Lock()
	var sent []string
	for _, r := range tb.reqs {
		if r.url == target && r.method == "POST" {
			sent = append(sent, fmt.Sprintf("Origin %s, cookies %v", r.origin, r.cookies))
			if r.origin == "" || r.origin == d.Base {
				t.Errorf("a cross-site POST went with Origin %q: not the attack this test means", r.origin)
			}
		}
	}
	tb.mu.Unlock()
	if len(sent) < 4 {
		t.Errorf("the browser sent %d POSTs to the retry endpoint, want 4 (form and fetch from two origins)", len(sent))
	}
	// Changed nothing: still parked, not sent again. No wait: the retry
	// endpoint puts a receipt back in the outbox before it answers, and
	// every POST has been answered, so a retry that slipped through shows
	// now as the receipt no longer parked.
	poll.Until(t, "every cross-site POST answered", 30*time.Second, func() bool { return len(tb.responsesTo(target)) >= len(sent) })
	o := overview(t, d)
	if !slices.ContainsFunc(o.ParkedReceipts, isParked(id)) {
		t.Errorf("after the cross-site POSTs %s is no longer parked: %+v", id, o.ParkedReceipts)
	}
	if arr := sim.arrivals(t, id); len(arr) != 1 {
		t.Errorf("the simulator saw %s %d times, want once (the parking 400)", id, len(arr))
	}
	t.Logf("cross-site POSTs sent: %s", strings.Join(sent, "; "))
	return target
}

// TestConsoleCrossSitePOST: no admin token, so loopback needs no login and
// only the CSRF checks stand between another site and the daemon.
func TestConsoleCrossSitePOST(t *testing.T) {
	browser.Need(t)
	sim, d := startConsoleStack(t, nil)
	tb := openTab(t, browser.Options{Lang: "en"})
	target := crossSitePOST(t, tb, sim, d)
	// The 403s it provoked, and the icon chromium asks for when it shows
	// the JSON answer of the form's POST.
	tb.noProblems(target, d.Base+"/favicon.ico")
}

// TestConsoleLogin: with --admin-token, the login form refuses a wrong
// token and a right one sets an HttpOnly SameSite=Strict session cookie
// (not the token); the token is in no URL the browser visited or requested,
// not in the daemon's log, journal or store; logging out clears the
// cookie; a cross-site POST with the session cookie is still refused.
func TestConsoleLogin(t *testing.T) {
	browser.Need(t)
	token := fmt.Sprintf("adm-%016x%016x", rand.Uint64(), rand.Uint64())
	sim, d := startConsoleStack(t, []string{"SHOPBRIDGE_ADMIN_TOKEN=" + token})
	tb := openTab(t, browser.Options{Lang: "en"})
	tb.open(d.Base + "/admin/login")
	tb.waitJS("the login form", `document.querySelector('`+tid("login-form")+`')`, 30*time.Second)
	if m := eval[string](tb, `document.querySelector('`+tid("login-form")+`').method`); m != "post" {
		t.Errorf("the login form's method is %q, want post (a GET would put the token in the URL)", m)
	}

	tb.typeInto(tid("login-token"), token+"x")
	tb.click(tid("login-submit"))
	tb.waitJS("the login error", `document.querySelector('`+tid("login-error")+`') && !document.querySelector('`+tid("login-error")+`').hidden`, 30*time.Second)
	if rs := tb.responsesTo(d.Base + "/admin/login"); len(rs) == 0 || rs[len(rs)-1].status != 401 {
		t.Errorf("a wrong token: responses %+v, want the last 401", rs)
	}
	if c := sessionCookie(t, tb, d); c != nil {
		t.Errorf("a wrong token set a session cookie: %+v", c)
	}

	tb.typeInto(tid("login-token"), token)
	tb.click(tid("login-submit"))
	tb.waitJS("the overview after login", `location.pathname === '/admin/' && document.querySelector('`+tid("upstream-state")+`')`, 30*time.Second)
	c := sessionCookie(t, tb, d)
	if c == nil {
		t.Fatal("no shopbridge_session cookie after a right token")
	}
	if !c.HTTPOnly {
		t.Error("the session cookie is not HttpOnly")
	}
	if c.SameSite != network.CookieSameSiteStrict {
		t.Errorf("the session cookie is SameSite=%q, want Strict", c.SameSite)
	}
	if c.Path != "/admin" {
		t.Errorf("the session cookie's path is %q, want /admin", c.Path)
	}
	if strings.Contains(c.Value, token) {
		t.Error("the session cookie holds the token itself")
	}
	if js := eval[string](tb, `document.cookie`); strings.Contains(js, "shopbridge_session") {
		t.Errorf("page script can read the session cookie: %q", js)
	}
	if eval[int](tb, `document.querySelectorAll('`+tid("logout")+`').length`) != 1 {
		t.Error("no logout button with a session")
	}

	// Another origin of the same site gets the SameSite=Strict cookie sent
	// along: only the CSRF checks refuse it.
	target := crossSitePOST(t, tb, sim, d)

	tb.open(d.Base + "/admin/")
	tb.click(tid("logout"))
	tb.waitJS("the login page after logout", `location.pathname === '/admin/login'`, 30*time.Second)
	if c := sessionCookie(t, tb, d); c != nil {
		t.Errorf("the session cookie is still there after logout: %+v", c)
	}

	tb.mu.Lock()
	var urls []string
	for _, r := range tb.reqs {
		urls = append(urls, r.url)
	}
	urls = append(urls, tb.navs...)
	tb.mu.Unlock()
	for _, u := range urls {
		if strings.Contains(u, token) || strings.Contains(u, url.QueryEscape(token)) {
			t.Errorf("the token is in a URL: %s", u)
		}
	}
	t.Logf("%d URLs requested or visited, none with the token", len(urls))

	status, journal, _ := do(t, "GET", d.Base+"/admin/api/journal?limit=100000", nil, map[string]string{"Authorization": "Bearer " + token})
	if status != 200 {
		t.Fatalf("journal: %d", status)
	}
	if bytes.Contains(journal, []byte(token)) {
		t.Error("the token is in the journal")
	}
	d.Stop(t)
	if strings.Contains(d.Logs(), token) {
		t.Error("the token is in the daemon's log")
	}
	if !strings.Contains(d.Logs(), "msg=") {
		t.Fatal("the daemon logged nothing: the log check above saw nothing")
	}
	db, err := os.ReadFile(filepath.Join(d.Data, storage.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(token)) {
		t.Error("the token is in the store file")
	}
	// The wrong token's 401 and the attacks' 403s were provoked.
	tb.noProblems(d.Base+"/admin/login", target, d.Base+"/favicon.ico")
}

// sessionCookie returns the browser's shopbridge_session cookie for the
// daemon, or nil.
func sessionCookie(t *testing.T, tb *tab, d *proc) *network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.Base + "/admin/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "shopbridge_session" {
			return c
		}
	}
	return nil
}

// TestConsoleCSP: every page carries the strict Content-Security-Policy and
// loads with no console error and no CSP violation; an inline script put
// into the page is refused and reported, which shows both that the policy
// is enforced and that this test would see a violation.
func TestConsoleCSP(t *testing.T) {
	browser.Need(t)
	_, d := startConsoleStack(t, []string{"SHOPBRIDGE_ADMIN_TOKEN=csp-test-token"})
	postReceipt(t, d, receiptBody(uniqueID("csp"), "49040", "SELL", ""))
	tb := openTab(t, browser.Options{Lang: "ru"})
	for _, p := range []string{"/admin/", "/admin/journal", "/admin/bills?date=2026-03-22", "/admin/login"} {
		from := tb.msgCount()
		tb.open(d.Base + p)
		// Let the page's own requests (the first refresh) run and show:
		// each page says when, then the console barrier brings in what
		// the browser said meanwhile.
		reqs := tb.reqCount()
		tb.waitJS("the page loaded", `document.readyState === 'complete'`, 30*time.Second)
		switch p {
		case "/admin/":
			tb.waitJS("the overview refreshed once", `+document.querySelector('`+tid("overview-updated")+`').dataset.refreshes >= 2`, 30*time.Second)
		case "/admin/journal":
			// The tail asks again only after showing its last answer.
			poll.Until(t, "the journal's live tail to have asked twice", 30*time.Second, func() bool {
				n, _ := tb.journalRequests(d.Base, reqs, true)
				return n >= 2
			})
		case "/admin/bills?date=2026-03-22":
			tb.waitJS("the bills shown", `document.querySelector('`+tid("bills-heading")+`').hasAttribute('data-view')`, 30*time.Second)
		}
		tb.consoleBarrier()
		var page *gotResponse
		for _, r := range tb.responsesTo(d.Base + p) {
			if r.url == d.Base+p {
				page = &r
			}
		}
		if page == nil {
			t.Fatalf("%s: no response to the page itself seen", p)
		}
		csp := page.header["content-security-policy"]
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: Content-Security-Policy %q allows unsafe-*", p, csp)
		}
		for _, pr := range tb.problems(from) {
			t.Errorf("%s: browser console: %s", p, pr)
		}
	}
	// Every asset the pages loaded carries the policy too.
	for _, r := range tb.responsesTo(d.Base + "/admin/assets/") {
		if !strings.Contains(r.header["content-security-policy"], "script-src 'self'") {
			t.Errorf("asset %s without the policy: %v", r.url, r.header)
		}
	}
	tb.open(d.Base + "/admin/")
	from := tb.msgCount()
	ran := eval[bool](tb, `(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = true'; document.body.appendChild(s); return window.__inline === true })()`)
	if ran {
		t.Error("an inline script ran on the console page: the policy is not enforced")
	}
	poll.Until(t, "the CSP violation reported in the console", 10*time.Second, func() bool {
		return slices.ContainsFunc(tb.problems(from), func(s string) bool { return strings.Contains(s, "Content Security Policy") })
	})
}
