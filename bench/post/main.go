// Command post measures durable receipts per second: -c concurrent posters
// send distinct, valid receipt events to POST /api/v2/receipts for -d and
// count the 200s (each one a receipt fsynced by the daemon). Around the run
// it reads .store.commits from /admin/api/status to show how many receipts
// share one commit.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// positions pads a receipt to about 1 KiB, the size of a small real one.
const positions = `"positions":[{"productName":"Шу пуэр «Вековые традиции», ЧАЁК, 200 грамм","quantity":50,"price":13.05,"sum":652.5,"tax":{"type":"VAT_5"}},` +
	`{"productName":"Лампа настольная Moderli V11277-1T Mykke","quantity":1,"price":1790,"sum":1790,"tax":{"type":"VAT_22"}}],` +
	`"payments":[{"type":"CARD","sum":2442.5}],"totalAmount":2442.5,"storeId":"20231120-0000-4000-8000-000000000001"`

func main() {
	base := flag.String("url", "", "daemon base URL, e.g. http://127.0.0.1:8480")
	conc := flag.Int("c", 64, "concurrent posters")
	dur := flag.Duration("d", 10*time.Second, "how long to post")
	prefix := flag.String("prefix", fmt.Sprintf("bench-%d", time.Now().UnixNano()), "event id prefix (unique per run)")
	flag.Parse()
	if *base == "" {
		log.Fatal("post: -url is required")
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc, DisableCompression: true}}

	before, err := commits(client, *base)
	if err != nil {
		log.Fatalf("post: %v", err)
	}
	var ok, bad atomic.Int64
	var seq atomic.Int64
	statuses := sync.Map{}
	lats := make([][]time.Duration, *conc)
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			device := fmt.Sprintf("bench-register-%02d", w)
			for time.Now().Before(deadline) {
				n := seq.Add(1)
				body := fmt.Sprintf(`{"id":"%s-%d","timestamp":%d,"type":"ReceiptCreated","data":{"type":"SELL","deviceId":"%s","extras":{"billId":"%d"},%s}}`,
					*prefix, n, time.Now().UnixMilli(), device, 1000000+n, positions)
				req, _ := http.NewRequest("POST", *base+"/api/v2/receipts", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Evotor-Device-UUID", device)
				t := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					statuses.Store("error: "+err.Error(), true)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
					lats[w] = append(lats[w], time.Since(t))
				} else {
					bad.Add(1)
					statuses.Store(fmt.Sprint("status ", resp.StatusCode), true)
				}
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	after, err := commits(client, *base)
	if err != nil {
		log.Fatalf("post: %v", err)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p := func(q float64) int64 {
		if len(all) == 0 {
			return 0
		}
		return all[int(q*float64(len(all)-1))].Microseconds()
	}
	statuses.Range(func(k, _ any) bool { fmt.Fprintf(os.Stderr, "post: saw %v\n", k); return true })
	dc := after - before
	per := 0.0
	if dc > 0 {
		per = float64(ok.Load()) / float64(dc)
	}
	fmt.Printf("RESULT ok=%d failed=%d seconds=%.2f receipts_per_s=%.0f p50_us=%d p99_us=%d commits=%d receipts_per_commit=%.1f\n",
		ok.Load(), bad.Load(), el.Seconds(), float64(ok.Load())/el.Seconds(), p(0.5), p(0.99), dc, per)
}

// commits reads .store.commits from the daemon's status.
func commits(c *http.Client, base string) (uint64, error) {
	resp, err := c.Get(base + "/admin/api/status")
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct {
		Store struct {
			Commits uint64 `json:"commits"`
		} `json:"store"`
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status answered %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, fmt.Errorf("status: %w", err)
	}
	return st.Store.Commits, nil
}
