// Package browser starts Debian's chromium headless and drives it over the
// DevTools protocol (chromedp) for the admin console's browser tests, its
// screenshots and its load-time benchmark. It exists so all three launch the
// browser one way: flags that keep it off the network (the machines have
// none and must not try), a fresh profile each time, and no chromium process
// left behind. internal/ because only the module's own tests and benchmarks
// use it.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the chromium to run: $SHOPBRIDGE_CHROMIUM when set, else the
// first of Debian's chromium, chromium-browser and google-chrome on PATH, or
// "" when there is none.
func Path() string {
	if p := os.Getenv("SHOPBRIDGE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// flags are chromium's command line besides the profile directory. The
// background-networking, component-update, sync and QUIC ones stop chromium
// from calling Google on start (safe browsing lists, field trials, component
// updates); the host resolver rule makes any name but loopback fail at once
// instead of waiting on DNS, so a page can never reach past loopback.
func flags(width, height int) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(width, height),
	}
}

// Options are what Start may change.
type Options struct {
	Width, Height int // window size; 0 means 1280×900
	// Lang is chromium's UI language and Accept-Language (--lang), e.g.
	// "ru" or "en-US"; "" leaves chromium's own default.
	Lang string
}

// Browser is a running chromium.
type Browser struct {
	// Ctx is the context of its first tab: pass it to chromedp.Run.
	Ctx context.Context

	dir         string
	cancelTab   context.CancelFunc
	cancelAlloc context.CancelFunc
	out         *lockedBuffer
	stopOnce    sync.Once
	leftovers   int
}

// Start launches chromium with a fresh profile in dir (which must be empty
// or absent, and is left for the caller to remove) and opens its first tab.
func Start(parent context.Context, path, dir string, o Options) (*Browser, error) {
	if path == "" {
		return nil, errors.New("browser: no chromium (install Debian's chromium package or set SHOPBRIDGE_CHROMIUM)")
	}
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("browser: profile directory: %w", err)
	}
	out := &lockedBuffer{}
	opts := append(flags(o.Width, o.Height),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.CombinedOutput(out),
	)
	if o.Lang != "" {
		opts = append(opts, chromedp.Flag("lang", o.Lang), chromedp.Flag("accept-lang", o.Lang))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	b := &Browser{Ctx: tabCtx, dir: dir, cancelTab: cancelTab, cancelAlloc: cancelAlloc, out: out}
	// The first Do starts the process and binds its life to the context it
	// gets, so it gets the tab's own; a watchdog bounds it instead, as a
	// chromium that cannot start (a missing library, a bad profile) would
	// otherwise hang here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tabCtx) }()
	var err error
	select {
	case err = <-started:
	case <-time.After(60 * time.Second):
		cancelAlloc()
		err = errors.New("no answer in 60 s")
	}
	if err != nil {
		b.Stop()
		return nil, fmt.Errorf("browser: start %s: %w\n%s", path, err, out.String())
	}
	return b, nil
}

// Output is what chromium wrote on stdout and stderr so far.
func (b *Browser) Output() string { return b.out.String() }

// Stop closes the browser, waits for it to exit and kills (SIGKILL, by pid)
// every process still running with its profile directory: chromium's
// zygote and utility processes can outlive the main one. It returns how many
// such leftovers it had to kill.
func (b *Browser) Stop() int {
	b.stopOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			// Cancel on the tab context closes chromium gracefully and
			// waits for it; bounded, then the allocator kills it.
			ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
			defer cancel()
			_ = chromedp.Cancel(ctx)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
		b.cancelTab()
		b.cancelAlloc()
		b.leftovers = KillLeftovers(b.dir)
	})
	return b.leftovers
}

// KillLeftovers kills every process whose command line names dir as its
// chromium profile, looking again until a few passes in a row find none
// (a process may fork as its parent dies), and returns how many it killed.
// Chromium passes --user-data-dir to every child it starts, and each
// Browser's directory is its own, so this kills only what Start started.
func KillLeftovers(dir string) int {
	want := []byte("--user-data-dir=" + dir)
	total, quiet := 0, 0
	for deadline := time.Now().Add(5 * time.Second); quiet < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n := 0
		for _, pid := range pidsWithArg(want) {
			if p, err := os.FindProcess(pid); err == nil && p.Kill() == nil {
				n++
			}
		}
		total += n
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return total
}

// Running reports how many processes run with dir as their profile.
func Running(dir string) int { return len(PIDs(dir)) }

// PIDs returns the processes that run with dir as their chromium profile.
func PIDs(dir string) []int { return pidsWithArg([]byte("--user-data-dir=" + dir)) }

// PIDs returns the browser's processes now (they come and go: a renderer
// per site, utility processes).
func (b *Browser) PIDs() []int { return PIDs(b.dir) }

func pidsWithArg(arg []byte) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for a := range bytes.SplitSeq(cmdline, []byte{0}) {
			if bytes.Equal(a, arg) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// lockedBuffer collects chromium's output, written from chromedp's reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

var _ io.Writer = (*lockedBuffer)(nil)

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Keep the last 64 KiB: enough to see why it failed.
	if l.buf.Len() > 64<<10 {
		l.buf.Next(l.buf.Len() - 32<<10)
	}
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
