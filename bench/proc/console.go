package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/shopbridge/shopbridge/internal/browser"
)

// consolePages are the pages whose load time is measured and the element
// whose appearance means the page shows its content: the overview's
// upstream state once the first status answer filled it, the journal's
// first row.
var consolePages = []struct{ name, path, content string }{
	{"overview", "/admin/", `[data-testid="upstream-state"][data-state]:not([data-state=""])`},
	{"journal", "/admin/journal", `[data-testid="journal-row"]`},
}

// pageTimer runs before any script of each new document (DevTools injects
// it, so the page's CSP does not apply): it notes performance.now() —
// milliseconds since navigation start — when the page's content element
// first appears, and again after the next frame is painted.
const pageTimer = `(() => {
  const sel = %s[location.pathname];
  if (!sel) return;
  const seen = () => {
    if (window.__contentAt !== undefined || !document.querySelector(sel)) return false;
    window.__contentAt = performance.now();
    requestAnimationFrame(() => setTimeout(() => { window.__paintAt = performance.now(); }, 0));
    return true;
  };
  const obs = new MutationObserver(() => { if (seen()) obs.disconnect(); });
  obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})()`

// loadTiming is one page load as the browser saw it, in ms since
// navigation start.
type loadTiming struct {
	TTFB      float64 `json:"ttfb"`    // first byte of the HTML
	DCL       float64 `json:"dcl"`     // DOMContentLoaded handlers done
	Load      float64 `json:"load"`    // load event done
	API       float64 `json:"api"`     // the last /admin/api/ answer before the content fully received
	Content   float64 `json:"content"` // the content element appeared
	Paint     float64 `json:"paint"`   // the frame after it was painted
	CPU       float64 `json:"-"`       // CPU time of all chromium's processes over the load
	DaemonCPU float64 `json:"-"`       // the daemon's CPU time over the load
}

// console measures the admin console on a store: each page's load in
// chromium (navigation start → content painted; -n loads with a cleared
// cache, -n with a warm one), the JSON endpoints behind them from a Go
// client (-api-n requests each), then the daemon's VmRSS and VmHWM.
func console(args []string) {
	if err := runConsole(args); err != nil {
		log.Fatalf("proc console: %v", err)
	}
}

// runConsole returns its errors, so that its defers stop the daemon and
// the browser before proc exits.
func runConsole(args []string) error {
	fs := flag.NewFlagSet("console", flag.ExitOnError)
	bin := fs.String("bin", "bin/shopbridge", "daemon binary")
	data := fs.String("data", "", "data directory with the store (bench/mkstore)")
	n := fs.Int("n", 11, "page loads per page, cold and warm each")
	apiN := fs.Int("api-n", 50, "requests per JSON endpoint")
	logFile := fs.String("log", "", "append the daemon's stderr here")
	fs.Parse(args)
	logTo, closeLog := openLog(*logFile)
	defer closeLog()
	d := start(*bin, *data, fs.Args(), logTo)
	defer d.stop()
	pid := d.cmd.Process.Pid

	fmt.Printf("load average at start: %s\n", loadAvg())
	// Read by a program, not a page: the overview's counts, for the
	// figures' caption.
	var ov struct {
		Bills          int `json:"bills"`
		JournalEntries int `json:"journal_entries"`
	}
	if b, err := getBody(d.base + "/admin/api/overview"); err != nil || json.Unmarshal(b, &ov) != nil {
		return fmt.Errorf("GET /admin/api/overview: %v %.200s", err, b)
	}
	fmt.Printf("store: %d bills, %d journal entries; at start %s\n", ov.Bills, ov.JournalEntries, memLine(memKiB(pid)))

	path := browser.Path()
	pageMS := map[string]float64{}
	if path == "" {
		fmt.Println("browser: skipped, no chromium (apt-get install -y chromium)")
	} else {
		dir, err := os.MkdirTemp("", "shopbridge-bench-chromium-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b, err := browser.Start(context.Background(), path, filepath.Join(dir, "profile"), browser.Options{Lang: "ru"})
		if err != nil {
			return err
		}
		defer b.Stop()
		sels := map[string]string{}
		for _, p := range consolePages {
			sels[p.path] = p.content
		}
		selJSON, _ := json.Marshal(sels)
		if _, err := chromedp.Call(b.Ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(pageTimer, selJSON)}); err != nil {
			return err
		}
		timings := map[string][]loadTiming{}
		// Warm-up load of each page (chromium's own first-use costs),
		// then rounds alternating the pages, so load from other work on
		// the machine spreads over both.
		for _, p := range consolePages {
			if _, err := loadPage(b.Ctx, b, pid, d.base+p.path, true); err != nil {
				return err
			}
		}
		for i := 0; i < *n; i++ {
			for _, p := range consolePages {
				for _, c := range []string{"cold", "warm"} {
					t, err := loadPage(b.Ctx, b, pid, d.base+p.path, c == "cold")
					if err != nil {
						return err
					}
					timings[p.name+"_"+c] = append(timings[p.name+"_"+c], t)
				}
			}
		}
		for _, p := range consolePages {
			for _, c := range []string{"cold", "warm"} {
				ts := timings[p.name+"_"+c]
				pick := func(f func(loadTiming) float64) []float64 {
					var xs []float64
					for _, t := range ts {
						xs = append(xs, f(t))
					}
					return xs
				}
				paint := pick(func(t loadTiming) float64 { return t.Paint })
				pageMS[p.name+"_"+c] = median(paint)
				pageMS[p.name+"_"+c+"_p95"] = quantile(paint, 0.95)
				cpu := pick(func(t loadTiming) float64 { return t.CPU })
				pageMS[p.name+"_"+c+"_cpu"] = median(cpu)
				fmt.Printf("browser %-8s %s cache: content painted median %.0f ms, p95 %.0f ms (first byte %.0f, DOMContentLoaded %.0f, load %.0f, API answers in %.0f, content in DOM %.0f); CPU per load: chromium %.0f ms, daemon %.1f ms; medians of %d loads\n",
					p.name, c, median(paint), quantile(paint, 0.95),
					median(pick(func(t loadTiming) float64 { return t.TTFB })), median(pick(func(t loadTiming) float64 { return t.DCL })),
					median(pick(func(t loadTiming) float64 { return t.Load })), median(pick(func(t loadTiming) float64 { return t.API })),
					median(pick(func(t loadTiming) float64 { return t.Content })), median(cpu),
					median(pick(func(t loadTiming) float64 { return t.DaemonCPU })), len(ts))
			}
		}
		if left := b.Stop(); left > 0 {
			fmt.Printf("browser: killed %d chromium processes left after close\n", left)
		}
	}
	m1 := memKiB(pid)
	fmt.Printf("daemon after the page loads: %s\n", memLine(m1))

	// The JSON endpoints behind the pages, one client with keep-alive as
	// the page's fetches.
	api := map[string][2]float64{}
	timeAPI := func(name, path string) error {
		ms, err := timeGets(d.base+path, *apiN)
		if err != nil {
			return err
		}
		api[name] = [2]float64{median(ms), quantile(ms, 0.95)}
		fmt.Printf("api %-15s %s: median %.2f ms, p95 %.2f ms (%d requests)\n", name, path, median(ms), quantile(ms, 0.95), *apiN)
		return nil
	}
	for _, e := range [][2]string{{"overview", "/admin/api/overview"}, {"journal_first", "/admin/api/journal/page?limit=50"}} {
		if err := timeAPI(e[0], e[1]); err != nil {
			return err
		}
	}
	m2 := memKiB(pid)
	fmt.Printf("daemon after those: %s\n", memLine(m2))
	// Deeper in the journal: paging to the middle, a kind filter, and a
	// text that matches nothing (the scan budget runs out and the answer
	// says to go on). These read far more of the store file, whose pages
	// count in VmRSS (RssFile) while the kernel keeps them.
	newest, err := newestSeq(d.base, "/admin/api/journal/page?limit=50")
	if err != nil {
		return err
	}
	for _, e := range [][2]string{
		{"journal_middle", fmt.Sprintf("/admin/api/journal/page?limit=50&before=%d", newest/2)},
		{"journal_kind", "/admin/api/journal/page?limit=50&kind=RECEIPT"},
		{"journal_text", "/admin/api/journal/page?limit=50&text=no-such-text-anywhere"},
	} {
		if err := timeAPI(e[0], e[1]); err != nil {
			return err
		}
	}
	m3 := memKiB(pid)
	fmt.Printf("daemon after the deeper journal requests: %s\n", memLine(m3))
	fmt.Printf("load average at the end: %s\n", loadAvg())
	fmt.Printf("RESULT bills=%d journal=%d overview_cold_ms=%.0f overview_warm_ms=%.0f journal_cold_ms=%.0f journal_warm_ms=%.0f overview_cold_cpu_ms=%.0f journal_cold_cpu_ms=%.0f overview_api_ms=%.2f overview_api_p95_ms=%.2f journal_api_ms=%.2f journal_api_p95_ms=%.2f journal_middle_api_ms=%.2f journal_text_api_ms=%.2f rss_mib=%s hwm_mib=%s rss_anon_mib=%s rss_deep_mib=%s rss_deep_anon_mib=%s\n",
		ov.Bills, ov.JournalEntries, pageMS["overview_cold"], pageMS["overview_warm"], pageMS["journal_cold"], pageMS["journal_warm"],
		pageMS["overview_cold_cpu"], pageMS["journal_cold_cpu"], api["overview"][0], api["overview"][1], api["journal_first"][0], api["journal_first"][1], api["journal_middle"][0], api["journal_text"][0],
		mib(m2["VmRSS"]), mib(m2["VmHWM"]), mib(m2["RssAnon"]), mib(m3["VmRSS"]), mib(m3["RssAnon"]))
	return nil
}

// timeGets times n sequential GETs of url (request sent → body read), ms.
func timeGets(url string, n int) ([]float64, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	var ms []float64
	for i := 0; i < n; i++ {
		t := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		ms = append(ms, float64(time.Since(t).Microseconds())/1000)
	}
	return ms, nil
}

func memLine(m map[string]int) string {
	return fmt.Sprintf("VmRSS %s MiB (anon %s, file %s), VmHWM %s MiB", mib(m["VmRSS"]), mib(m["RssAnon"]), mib(m["RssFile"]), mib(m["VmHWM"]))
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// newestSeq reads one page of /admin/api/journal/page for its highest seq.
func newestSeq(base, path string) (int, error) {
	b, err := getBody(base + path)
	var doc struct {
		Rows []struct {
			Seq int `json:"seq"`
		} `json:"rows"`
	}
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err == nil && len(doc.Rows) == 0 {
		err = fmt.Errorf("no rows")
	}
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	n := 0
	for _, r := range doc.Rows {
		n = max(n, r.Seq)
	}
	return n, nil
}

func getBody(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	return b, err
}

// loadPage navigates to url (after clearing the cache when cold) and
// returns the timings the page noted.
func loadPage(ctx context.Context, b *browser.Browser, daemonPID int, url string, cold bool) (loadTiming, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if cold {
		if _, err := chromedp.Call(ctx, network.ClearBrowserCache, cdp.Empty{}); err != nil {
			return loadTiming{}, fmt.Errorf("clear cache: %w", err)
		}
	}
	cpu0 := cpuNS(append(b.PIDs(), daemonPID))
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return loadTiming{}, fmt.Errorf("load %s: %w", url, err)
	}
	// Polled from here rather than with chromedp.Poll, which fails when the
	// page's JavaScript context it started in is replaced.
	var t loadTiming
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[*loadTiming](`window.__paintAt === undefined ? null : (() => {
		  const n = performance.getEntriesByType('navigation')[0];
		  const api = performance.getEntriesByType('resource').filter(e => e.name.includes('/admin/api/') && e.startTime < window.__contentAt);
		  return {ttfb: n.responseStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
		    api: Math.max(0, ...api.map(e => e.responseEnd)), content: window.__contentAt, paint: window.__paintAt};
		})()`))
		if err == nil && v != nil {
			t = *v
			break
		}
		if ctx.Err() != nil {
			return t, fmt.Errorf("%s: content never appeared (last error: %v)", url, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu1 := cpuNS(append(b.PIDs(), daemonPID))
	t.CPU = 0
	for pid, ns := range cpu1 {
		if pid == daemonPID {
			t.DaemonCPU = float64(ns-cpu0[pid]) / 1e6
		} else {
			// A process that started during the load counts from 0.
			t.CPU += float64(ns-cpu0[pid]) / 1e6
		}
	}
	return t, nil
}

// cpuNS reads each process's CPU time so far (the sum over its threads of
// /proc/PID/task/TID/schedstat's first field, ns). A process that ended is
// left out.
func cpuNS(pids []int) map[int]int64 {
	m := map[int]int64{}
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, t := range tasks {
			if b, err := os.ReadFile(t); err == nil {
				if f := strings.Fields(string(b)); len(f) > 0 {
					n, _ := strconv.ParseInt(f[0], 10, 64)
					m[pid] += n
				}
			}
		}
	}
	return m
}

func quantile(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}
