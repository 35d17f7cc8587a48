// Command bench measures sync against the upstream simulator and prints
// the figures: mirroring open bills on start, and draining an outbox that
// filled during an outage, at each simulated latency, against an upstream
// that takes any number of calls at once and one limited to
// -max-concurrent (it answers 429 above that), with the adaptive push
// window capped at each -inflight and with the window fixed at each -fixed
// (the push before the adaptive window).
//
//	go run ./sync/bench [-bills 1000] [-receipts 10000] [-latency 0,50ms]
//	                    [-max-concurrent 0,8] [-inflight 64] [-fixed 8]
//
// -bills 0 or -receipts 0 skips that part. Everything runs in this process
// over loopback HTTP: a crmsim server, a bbolt store in a temporary
// directory and a Syncer. The last lines compare each adaptive drain with
// the fixed one against the same upstream.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/storage"
	upsync "github.com/shopbridge/shopbridge/sync"
)

func main() {
	bills := flag.Int("bills", 1000, "open bills the simulator serves; 0 skips the mirror")
	receipts := flag.Int("receipts", 10000, "receipts queued during the outage; 0 skips the drain")
	latencies := flag.String("latency", "0,50ms", "comma-separated simulated latencies")
	maxConc := flag.String("max-concurrent", "0", "comma-separated upstream concurrency limits (0: none)")
	inFlight := flag.String("inflight", "64", "comma-separated caps of the adaptive push window (none: \"\")")
	fixed := flag.String("fixed", "8", "comma-separated fixed push windows to compare with (none: \"\")")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -cpuprofile: %v\n", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	var lats []time.Duration
	for _, s := range strings.Split(*latencies, ",") {
		if s == "0" {
			s = "0s"
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			fmt.Fprintf(os.Stderr, "bench: -latency %q: want durations such as 50ms\n", s)
			os.Exit(2)
		}
		lats = append(lats, d)
	}
	mcs := numbers("max-concurrent", *maxConc, 0)
	var pushes []push
	for _, n := range numbers("inflight", *inFlight, 1) {
		pushes = append(pushes, push{cap: n})
	}
	for _, n := range numbers("fixed", *fixed, 1) {
		pushes = append(pushes, push{cap: n, fixed: true})
	}
	failed := false
	for _, lat := range lats {
		for _, mc := range mcs {
			if *bills == 0 {
				break
			}
			m, err := mirror(*bills, lat, mc)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: mirror: %v\n", err)
				failed = true
				continue
			}
			fmt.Printf("sync mirror   bills=%-6d latency=%-5v upstream=%s  %8.3f s  (%d bills stored, %.0f bills/s; %d calls refused of %d bill calls, %.2f%%; peak %d calls at once; %.1f bills a store commit; load %s)\n",
				*bills, lat, upstreamName(mc), m.d.Seconds(), m.stored, float64(m.stored)/m.d.Seconds(),
				m.refused, m.calls, 100*m.refusedFraction(), m.peak, float64(m.stored)/float64(max(m.commits, 1)), loadavg())
			if lat == 50*time.Millisecond && mc == 0 && *bills >= 10000 {
				fmt.Printf("sync goal     mirror bills=%d latency=%v upstream=%s: %.1f s (goal < 15 s for 10,000: %s)\n",
					*bills, lat, upstreamName(mc), m.d.Seconds(), met(m.d < 15*time.Second))
			}
			if mc > 0 {
				fmt.Printf("sync goal     mirror bills=%d latency=%v upstream=%s: peak %d calls at once, %.2f%% of bill calls refused (goal < 5%%: %s)\n",
					*bills, lat, upstreamName(mc), m.peak, 100*m.refusedFraction(), met(m.refusedFraction() < 0.05))
			}
		}
	}
	var runs []drained
	for _, lat := range lats {
		for _, mc := range mcs {
			for _, p := range pushes {
				if *receipts == 0 {
					break
				}
				r, err := drain(*receipts, lat, mc, p)
				if err != nil {
					fmt.Fprintf(os.Stderr, "bench: drain: %v\n", err)
					failed = true
					continue
				}
				runs = append(runs, r)
				fmt.Printf("sync drain    receipts=%d latency=%v upstream=%s push=%s  %.3f s  (%.0f receipts/s; %d of %d receipt calls refused, %.2f%%; peak %d calls at once; window mean %.1f, in flight mean %.1f; %.1f receipts a store commit; load %s)\n",
					*receipts, lat, upstreamName(mc), p, r.d.Seconds(), float64(*receipts)/r.d.Seconds(),
					r.refused, r.calls, 100*r.refusedFraction(), r.peak, r.window, r.inFlight, float64(*receipts)/float64(max(r.commits, 1)), loadavg())
			}
		}
	}
	for _, a := range runs {
		if a.push.fixed {
			continue
		}
		if a.maxConc == 0 && a.latency == 50*time.Millisecond {
			fmt.Printf("sync goal     latency=%v upstream=%s push=%s: %.1f s for %d receipts (goal < 10 s for 10,000: %s)\n",
				a.latency, upstreamName(a.maxConc), a.push, a.d.Seconds(), *receipts, met(a.d < 10*time.Second && *receipts >= 10000))
		}
		for _, f := range runs {
			if !f.push.fixed || f.latency != a.latency || f.maxConc != a.maxConc {
				continue
			}
			r := a.d.Seconds() / f.d.Seconds()
			fmt.Printf("sync ratio    latency=%v upstream=%s: push=%s / push=%s time %.2f (fixed %.1f s, adaptive %.1f s)\n",
				a.latency, upstreamName(a.maxConc), a.push, f.push, r, f.d.Seconds(), a.d.Seconds())
			if a.maxConc > 0 {
				fmt.Printf("sync goal     latency=%v upstream=%s push=%s: %.2f of %s's time (goal <= 1.2: %s), %.2f%% of receipt calls refused (goal < 5%%: %s)\n",
					a.latency, upstreamName(a.maxConc), a.push, r, f.push, met(r <= 1.2), 100*a.refusedFraction(), met(a.refusedFraction() < 0.05))
			}
		}
	}
	if failed {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// numbers parses a comma-separated list of numbers of at least least.
func numbers(name, list string, least int) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < least {
			fmt.Fprintf(os.Stderr, "bench: -%s %q: want numbers of at least %d\n", name, s, least)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

// push is how the outbox is pushed: the adaptive window up to cap, or a
// window fixed at cap.
type push struct {
	cap   int
	fixed bool
}

func (p push) String() string {
	if p.fixed {
		return fmt.Sprintf("fixed-%d", p.cap)
	}
	return fmt.Sprintf("adaptive-max-%d", p.cap)
}

func upstreamName(maxConc int) string {
	if maxConc == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("max-concurrent-%d", maxConc)
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore() (*storage.Store, func(), error) {
	dir, err := os.MkdirTemp("", "shopbridge-bench-")
	if err != nil {
		return nil, nil, err
	}
	st, err := storage.Open(filepath.Join(dir, storage.FileName), storage.Options{Logger: quiet()})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return st, func() { st.Close(); os.RemoveAll(dir) }, nil
}

// mirrored is one mirror's figures.
type mirrored struct {
	d       time.Duration
	stored  int
	calls   int64  // bill calls that reached the simulator
	refused int64  // calls refused for max-concurrent (all kinds)
	peak    int    // most calls open at the simulator at once
	commits uint64 // store commits during the mirror
}

func (m mirrored) refusedFraction() float64 {
	if m.calls == 0 {
		return 0
	}
	return float64(m.refused) / float64(m.calls)
}

// mirror times a first pull of n open bills into an empty store, from an
// upstream with the latency that answers 429 above maxConc calls at once
// (0: no limit).
func mirror(n int, latency time.Duration, maxConc int) (mirrored, error) {
	var m mirrored
	sim, err := crmsim.Open(crmsim.Config{Data: crmsim.Generate(n, time.Now()), Latency: latency, MaxConcurrent: maxConc, Logger: quiet()})
	if err != nil {
		return m, err
	}
	defer sim.Close()
	st, done, err := openStore()
	if err != nil {
		return m, err
	}
	defer done()
	commits := st.Commits()
	s := upsync.New(upsync.Config{URL: sim.URL(), Interval: time.Hour, Logger: quiet()}, st)
	start := time.Now()
	if err := s.Open(context.Background()); err != nil {
		return m, err
	}
	defer s.Close()
	deadline := start.Add(5 * time.Minute)
	for {
		// Counting stored bodies reads the whole store: do it only once
		// the simulator has answered a bill call per bill, so the poll
		// does not take the CPU the mirror needs.
		if sim.Counters()[crmsim.KindBill] >= int64(n) {
			stats, err := st.Stats()
			if err != nil {
				return m, err
			}
			if stored := countBodies(st); stored >= n && stats.OpenBills >= n {
				m.d, m.stored = time.Since(start), stored
				break
			}
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("%d of %d bills after 5 minutes", countBodies(st), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.commits = st.Commits() - commits
	m.calls = sim.Counters()[crmsim.KindBill]
	m.peak, m.refused = sim.Concurrency()
	return m, nil
}

func countBodies(st *storage.Store) int {
	sums, err := st.List(storage.ListQuery{})
	if err != nil {
		return 0
	}
	n := 0
	for _, s := range sums {
		if _, err := st.BillBody(nil, s.ID); err == nil {
			n++
		}
	}
	return n
}

// drained is one drain's figures.
type drained struct {
	latency       time.Duration
	maxConc       int
	push          push
	d             time.Duration
	calls         int     // receipt calls that reached the simulator, retries included
	refused       int     // of those, answered 429 for max-concurrent
	peak          int     // most calls open at the simulator at once (all kinds)
	refusedOthers int64   // other calls (pulls) refused for max-concurrent
	window        float64 // the push window, mean of polls while online
	inFlight      float64 // receipts sent and not yet recorded, mean of polls while online
	commits       uint64  // store commits during the drain
}

func (r drained) refusedFraction() float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(r.refused) / float64(r.calls)
}

// drain queues n receipts while the upstream refuses connections, then
// times how long the outbox takes to empty once it is back.
func drain(n int, latency time.Duration, maxConc int, p push) (drained, error) {
	r := drained{latency: latency, maxConc: maxConc, push: p}
	// No bills: the pulls during the drain are two list calls a second.
	sim, err := crmsim.Open(crmsim.Config{Data: &crmsim.Data{}, Latency: latency, MaxConcurrent: maxConc, Logger: quiet()})
	if err != nil {
		return r, err
	}
	defer sim.Close()
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse}); err != nil {
		return r, err
	}
	st, done, err := openStore()
	if err != nil {
		return r, err
	}
	defer done()
	cfg := upsync.Config{URL: sim.URL(), Interval: time.Second, InFlight: p.cap, Logger: quiet()}
	if p.fixed {
		cfg.InFlightMin = p.cap
	}
	s := upsync.New(cfg, st)
	if err := s.Open(context.Background()); err != nil {
		return r, err
	}
	defer s.Close()
	if err := queue(st, n); err != nil {
		return r, err
	}
	if s.Online() || st.OutboxLen() != n {
		return r, fmt.Errorf("outbox holds %d of %d before the upstream returns", st.OutboxLen(), n)
	}
	commits := st.Commits()
	start := time.Now()
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		return r, err
	}
	// Probe now rather than after the probe backoff (up to the interval),
	// which is not the push's time.
	s.PullNow()
	deadline := start.Add(10 * time.Minute)
	var polls, windows, inFlight int
	for st.OutboxLen() > 0 {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("%d receipts still queued after 10 minutes", st.OutboxLen())
		}
		if ss := s.Status(); ss.Upstream == shopbridge.UpstreamOnline {
			polls++
			windows += ss.PushWindow
			inFlight += ss.InFlight
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.d = time.Since(start)
	r.commits = st.Commits() - commits
	if polls > 0 {
		r.window, r.inFlight = float64(windows)/float64(polls), float64(inFlight)/float64(polls)
	}
	delivered := 0
	for _, rc := range sim.Receipts() {
		r.calls++
		if rc.Delivered {
			delivered++
		}
		if rc.Fault == crmsim.FaultMaxConcurrent {
			r.refused++
		}
	}
	if delivered < n {
		return r, fmt.Errorf("the simulator has %d of %d receipts", delivered, n)
	}
	if parked, err := st.Parked(); err != nil || len(parked) > 0 {
		return r, fmt.Errorf("%d receipts parked (%v)", len(parked), err)
	}
	var all int64
	r.peak, all = sim.Concurrency()
	r.refusedOthers = all - int64(r.refused)
	return r, nil
}

// queue accepts n receipts from 20 registers, as concurrent registers would.
func queue(st *storage.Store, n int) error {
	errs := make(chan error, 20)
	for reg := range 20 {
		go func() {
			for i := reg; i < n; i += 20 {
				device := fmt.Sprintf("dev-%02d", reg)
				bill := fmt.Sprint(800000 + i/2)
				typ := "SELL"
				if i%2 == 1 {
					typ = "PAYBACK"
				}
				id := fmt.Sprintf("bench-%06d", i)
				body := fmt.Sprintf(`{"id": %q, "type": "ReceiptCreated", "data": {"type": %q, "deviceId": %q, "totalAmount": 4604.04, "extras": {"billId": %q}}}`,
					id, typ, device, bill)
				_, err := st.AcceptReceipt(&shopbridge.Receipt{EventID: id, Body: []byte(body), ReceivedAt: time.Now(),
					Headers: map[string]string{"X-Evotor-Device-Uuid": device}, Type: typ, BillID: bill, DeviceID: device})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}
