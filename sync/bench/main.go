// Command bench measures sync against the upstream simulator and prints
// the figures: mirroring open bills on start, and draining an outbox that
// filled during an outage, each at 0 ms and 50 ms simulated latency.
//
//	go run ./sync/bench [-bills 1000] [-receipts 10000] [-latency 0,50ms] [-inflight 8]
//
// Everything runs in this process over loopback HTTP: a crmsim server, a
// bbolt store in a temporary directory and a Syncer.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/storage"
	upsync "github.com/shopbridge/shopbridge/sync"
)

func main() {
	bills := flag.Int("bills", 1000, "open bills the simulator serves")
	receipts := flag.Int("receipts", 10000, "receipts queued during the outage")
	latencies := flag.String("latency", "0,50ms", "comma-separated simulated latencies")
	inFlight := flag.String("inflight", "8", "comma-separated receipts-in-flight settings to drain with")
	flag.Parse()
	var lats []time.Duration
	for _, s := range strings.Split(*latencies, ",") {
		if s == "0" {
			s = "0s"
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: -latency %q: %v\n", s, err)
			os.Exit(2)
		}
		lats = append(lats, d)
	}
	var ifs []int
	for _, s := range strings.Split(*inFlight, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(s), &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -inflight %q: want positive numbers\n", s)
			os.Exit(2)
		}
		ifs = append(ifs, n)
	}
	failed := false
	for _, lat := range lats {
		d, n, err := mirror(*bills, lat)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: mirror: %v\n", err)
			failed = true
			continue
		}
		fmt.Printf("sync mirror   bills=%-6d latency=%-5v  %8.3f s  (%d bills stored, %.0f bills/s)\n",
			*bills, lat, d.Seconds(), n, float64(n)/d.Seconds())
	}
	for _, lat := range lats {
		for _, inf := range ifs {
			d, err := drain(*receipts, lat, inf)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: drain: %v\n", err)
				failed = true
				continue
			}
			fmt.Printf("sync drain    receipts=%-6d latency=%-5v in_flight=%-3d  %8.3f s  (%.0f receipts/s)\n",
				*receipts, lat, inf, d.Seconds(), float64(*receipts)/d.Seconds())
		}
	}
	if failed {
		os.Exit(1)
	}
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

// mirror times a first pull of n open bills into an empty store.
func mirror(n int, latency time.Duration) (time.Duration, int, error) {
	sim, err := crmsim.Open(crmsim.Config{Data: crmsim.Generate(n, time.Now()), Latency: latency, Logger: quiet()})
	if err != nil {
		return 0, 0, err
	}
	defer sim.Close()
	st, done, err := openStore()
	if err != nil {
		return 0, 0, err
	}
	defer done()
	s := upsync.New(upsync.Config{URL: sim.URL(), Interval: time.Hour, Logger: quiet()}, st)
	start := time.Now()
	if err := s.Open(context.Background()); err != nil {
		return 0, 0, err
	}
	defer s.Close()
	deadline := start.Add(5 * time.Minute)
	for {
		stats, err := st.Stats()
		if err != nil {
			return 0, 0, err
		}
		if stored := countBodies(st); stored >= n && stats.OpenBills >= n {
			return time.Since(start), stored, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%d of %d bills after 5 minutes", countBodies(st), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

// drain queues n receipts while the upstream refuses connections, then
// times how long the outbox takes to empty once it is back.
func drain(n int, latency time.Duration, inFlight int) (time.Duration, error) {
	sim, err := crmsim.Open(crmsim.Config{Latency: latency, Logger: quiet()})
	if err != nil {
		return 0, err
	}
	defer sim.Close()
	if err := sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse}); err != nil {
		return 0, err
	}
	st, done, err := openStore()
	if err != nil {
		return 0, err
	}
	defer done()
	s := upsync.New(upsync.Config{URL: sim.URL(), Interval: time.Second, InFlight: inFlight, Logger: quiet()}, st)
	if err := s.Open(context.Background()); err != nil {
		return 0, err
	}
	defer s.Close()
	if err := queue(st, n); err != nil {
		return 0, err
	}
	if s.Online() || st.OutboxLen() != n {
		return 0, fmt.Errorf("outbox holds %d of %d before the upstream returns", st.OutboxLen(), n)
	}
	start := time.Now()
	if err := sim.SetFault(crmsim.Fault{}); err != nil {
		return 0, err
	}
	deadline := start.Add(10 * time.Minute)
	for st.OutboxLen() > 0 {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d receipts still queued after 10 minutes", st.OutboxLen())
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(start)
	delivered := 0
	for _, r := range sim.Receipts() {
		if r.Delivered {
			delivered++
		}
	}
	if delivered < n {
		return 0, fmt.Errorf("the simulator has %d of %d receipts", delivered, n)
	}
	return d, nil
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
