// Command backuplat measures what a backup costs the registers: it starts a
// shopbridge binary on a copy of a large store (bench/mkstore), lets -c
// registers post receipts of about -pad bytes every -every, and meanwhile
// downloads GET /admin/api/backup through a sink that takes -rate bytes a
// second (a slow client, a USB stick). It prints the receipts' latency
// (p50, p99, max) while the backup ran, the slowest /healthz, and the
// backup's duration and size. Run it against an old and a new binary to
// compare; it asserts nothing.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/shopbridge", "the shopbridge binary to measure")
	store := flag.String("store", "", "the store to copy and serve (from bench/mkstore)")
	rate := flag.Int("rate", 4<<20, "bytes a second the backup's sink takes")
	regs := flag.Int("c", 4, "registers posting receipts")
	every := flag.Duration("every", 100*time.Millisecond, "pause between one register's receipts")
	pad := flag.Int("pad", 8<<10, "bytes of padding in each receipt")
	baseline := flag.Duration("baseline", 0, "no backup: measure the receipts for this long, for comparison")
	flag.Parse()
	if *store == "" {
		log.Fatal("backuplat: -store is required")
	}
	data, err := os.MkdirTemp(filepath.Dir(*store), "backuplat-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(data)
	if out, err := exec.Command("cp", *store, filepath.Join(data, "shopbridge.db")).CombinedOutput(); err != nil {
		log.Fatalf("copy the store: %v %s", err, out)
	}
	conf := filepath.Join(data, "empty.toml")
	os.WriteFile(conf, nil, 0o600)
	cmd := exec.Command(*bin, "run", "--listen", "127.0.0.1:0", "--data", data, "--mdns=false", "--config", conf,
		"--backup-dir", "none")
	if strings.Contains(*bin, "old") { // a build from before backup-dir existed
		cmd = exec.Command(*bin, "run", "--listen", "127.0.0.1:0", "--data", data, "--mdns=false", "--config", conf)
	}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	base := ""
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`msg=listening addr=(\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = "http://" + m[1]
			break
		}
	}
	if base == "" {
		log.Fatal("the daemon did not start")
	}
	go io.Copy(io.Discard, stderr)

	var mu sync.Mutex
	var lat []time.Duration
	type slow struct{ at, d time.Duration }
	var slows []slow
	var t0 time.Time
	var failed int
	during := false
	stop := make(chan struct{})
	var wg sync.WaitGroup
	body := strings.Repeat("x", *pad)
	for r := range *regs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(*every):
				}
				b := fmt.Sprintf(`{"id":"bench-%d-%d-%d","data":{"type":"SELL","pad":%q}}`, time.Now().UnixNano(), r, i, body)
				t1 := time.Now()
				resp, err := http.Post(base+"/api/v2/receipts", "application/json", strings.NewReader(b))
				d := time.Since(t1)
				ok := err == nil && resp.StatusCode == 200
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if during {
					lat = append(lat, d)
					if d > 100*time.Millisecond {
						slows = append(slows, slow{t1.Sub(t0), d})
					}
					if !ok {
						failed++
					}
				}
				mu.Unlock()
			}
		}()
	}
	var healthMax time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			t0 := time.Now()
			if resp, err := http.Get(base + "/healthz"); err == nil {
				resp.Body.Close()
			}
			mu.Lock()
			if during {
				healthMax = max(healthMax, time.Since(t0))
			}
			mu.Unlock()
		}
	}()

	time.Sleep(2 * time.Second) // the registers settle in; the figures start with the backup
	mu.Lock()
	during = true
	t0 = time.Now()
	mu.Unlock()
	var n, length int64
	if *baseline > 0 {
		time.Sleep(*baseline)
	} else {
		resp, err := http.Get(base + "/admin/api/backup")
		if err != nil {
			log.Fatal(err)
		}
		length = resp.ContentLength
		tick := time.NewTicker(100 * time.Millisecond)
		chunk := int64(*rate / 10)
		for {
			<-tick.C
			k, err := io.CopyN(io.Discard, resp.Body, chunk)
			n += k
			if err != nil {
				break
			}
		}
		resp.Body.Close()
	}
	took := time.Since(t0)
	mu.Lock()
	during = false
	mu.Unlock()
	close(stop)
	wg.Wait()

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	over := 0
	for _, d := range lat {
		if d > 100*time.Millisecond {
			over++
		}
	}
	fi, _ := os.Stat(*store)
	fmt.Printf("binary %s, store %.0f MiB, sink %.1f MiB/s, %d registers every %s, receipts of %d KiB\n",
		*bin, float64(fi.Size())/(1<<20), float64(*rate)/(1<<20), *regs, *every, *pad>>10)
	if *baseline > 0 {
		fmt.Printf("baseline: no backup, %s\n", took.Round(time.Millisecond))
	} else {
		fmt.Printf("backup: %d bytes (Content-Length %d) in %s\n", n, length, took.Round(time.Millisecond))
	}
	fmt.Printf("receipts during the backup: %d (%d failed), p50 %s, p99 %s, max %s, %d over 100 ms; slowest /healthz %s\n",
		len(lat), failed, pct(0.5).Round(time.Microsecond*10), pct(0.99).Round(time.Microsecond*10), pct(1).Round(time.Microsecond*10),
		over, healthMax.Round(time.Millisecond))
	sort.Slice(slows, func(i, j int) bool { return slows[i].d > slows[j].d })
	for i, s := range slows[:min(5, len(slows))] {
		fmt.Printf("  slow #%d: %s, started %s after the backup began\n", i+1, s.d.Round(time.Millisecond), s.at.Round(time.Millisecond))
	}
}
