//go:build linux

// Command rush measures the evening rush on a shop's PC: the daemon pinned
// to one core (taskset, GOMAXPROCS=1, as the service sees on a single-core
// or busy PC), ten simulated registers doing what a register does (hello
// now and then, a list every few seconds, and per sale a bill and its
// receipt), first with nothing else running ("quiet"), then while the
// internet comes back ("rush"): the upstream simulator returns after an
// outage, so the daemon drains the receipts queued meanwhile at the
// simulated latency and mirrors the upstream's catalogue, while a backup of
// the store streams to a slow reader. It prints p50, p99 and max of each
// kind of terminal answer in each phase, the daemon's CPU and memory
// (VmRSS, VmHWM) and the machine's load; it asserts nothing.
//
//	rush -bin bin/shopbridge [-store FILE] [-registers 10] [-d 20s]
//	     [-receipts 10000] [-bills 10000] [-latency 50ms] [-backup-rate 4MiB]
//	     [-cpus 0] [-gomaxprocs 1] [-slow 5ms]
//
// -store copies a store built by bench/mkstore into the daemon's data
// directory first (a large store: what the backup streams, what VmHWM is
// read with). The simulator and the registers run in this process, which
// the caller should keep off the daemon's core (bench/part-rush.sh pins it
// to another one).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
)

var kinds = []string{"hello", "list", "bill", "receipt"}

func main() {
	bin := flag.String("bin", "bin/shopbridge", "the daemon binary")
	store := flag.String("store", "", "a store file (bench/mkstore) to start from; empty: --demo")
	registers := flag.Int("registers", 10, "simulated registers")
	d := flag.Duration("d", 20*time.Second, "the quiet phase, and the least the rush phase lasts")
	maxRush := flag.Duration("max-rush", 2*time.Minute, "the most the rush phase lasts while the drain or the mirror runs")
	saleEvery := flag.Duration("sale-every", 2*time.Second, "a sale (bill + receipt) per register, on average every")
	listEvery := flag.Duration("list-every", 3*time.Second, "a list per register, on average every")
	receipts := flag.Int("receipts", 10000, "receipts queued during the outage, drained in the rush")
	bills := flag.Int("bills", 200, "open bills in the upstream's list, mirrored in the rush (the list the registers then get: keep it near the store's own so the phases compare)")
	latency := flag.Duration("latency", 50*time.Millisecond, "the simulated upstream latency")
	backupRate := flag.Int("backup-rate", 4<<20, "bytes/s the backup's reader takes; 0: no backup")
	cpus := flag.String("cpus", "0", "taskset CPU list for the daemon; empty: not pinned")
	gomaxprocs := flag.Int("gomaxprocs", 1, "GOMAXPROCS of the daemon; 0: Go's default")
	flag.DurationVar(&slowAnswer, "slow", 0, "print each answer slower than this, with when in its phase it came (0: none)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "shopbridge-rush-")
	check(err)
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	check(os.MkdirAll(data, 0o755))
	extra := []string{"--demo"}
	if *store != "" {
		check(copyFile(*store, filepath.Join(data, "shopbridge.db")))
		extra = []string{"--journal-max-size", "8GiB"} // keep the store as built
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim, err := crmsim.Open(crmsim.Config{Data: crmsim.Generate(*bills, time.Now()), Latency: *latency, Logger: quiet})
	check(err)
	defer sim.Close()
	check(sim.SetFault(crmsim.Fault{Mode: crmsim.FaultRefuse})) // the outage

	args := append([]string{"run", "--listen", "127.0.0.1:0", "--data", data, "--mdns=false",
		"--upstream", sim.URL(), "--sync-interval", "1s"}, extra...)
	name := *bin
	if *cpus != "" {
		args = append([]string{"-c", *cpus, *bin}, args...)
		name = "taskset"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no daemon left behind if this exits early
	if *gomaxprocs > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", *gomaxprocs))
	}
	stderr, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Signal(os.Interrupt); <-exited }()
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg=listening addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-exited:
		log.Fatalf("rush: the daemon exited at start (%v)", cmd.ProcessState)
	case <-time.After(60 * time.Second):
		log.Fatal("rush: the daemon did not start listening in 60 s")
	}
	pid := cmd.Process.Pid
	fmt.Printf("rush: daemon pid %d, %s, cpus %q, GOMAXPROCS %d, store %s, %d registers (a sale every %v, a list every %v)\n",
		pid, base, *cpus, *gomaxprocs, orDemo(*store), *registers, *saleEvery, *listEvery)

	ids := openIDs(base)
	if len(ids) == 0 {
		log.Fatal("rush: the daemon lists no open bills")
	}
	reg := registersConfig{base: base, n: *registers, saleEvery: *saleEvery, listEvery: *listEvery, ids: ids}

	// Quiet: the registers alone (the upstream is down and probed now and then).
	la, cpuA := loadavg(), cpuMS(pid)
	q := reg.run("quiet", *d, nil)
	q.report("quiet", la, cpuA, pid)

	// The outage's backlog, queued before the rush (not measured).
	t0 := time.Now()
	queued := queue(base, *receipts)
	fmt.Printf("rush: %d receipts queued in %.1f s during the outage\n", queued, time.Since(t0).Seconds())

	// The rush: the upstream returns; the drain, the mirror and a backup run.
	la, cpuA = loadavg(), cpuMS(pid)
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var backupBytes atomic.Int64
	var bwg sync.WaitGroup
	if *backupRate > 0 {
		bwg.Add(1)
		go func() { defer bwg.Done(); slowBackup(ctx, base, *backupRate, &backupBytes, start) }()
	}
	check(sim.SetFault(crmsim.Fault{}))
	var drained, mirroredAt atomic.Int64
	busy := func() bool {
		now := time.Since(start)
		if drained.Load() == 0 && outbox(base) == 0 {
			drained.Store(int64(now))
		}
		if mirroredAt.Load() == 0 && sim.Counters()[crmsim.KindBill] >= int64(*bills) {
			mirroredAt.Store(int64(now))
		}
		return (drained.Load() == 0 || mirroredAt.Load() == 0) && now < *maxRush
	}
	r := reg.run("rush", *d, busy)
	cancel()
	bwg.Wait()
	r.report("rush", la, cpuA, pid)
	fmt.Printf("rush: phase %.1f s; drain of %d receipts %s; mirror of %d bills %s; backup streamed %.0f MiB at up to %.1f MiB/s\n",
		time.Since(start).Seconds(), queued, took(drained.Load()), *bills, took(mirroredAt.Load()),
		float64(backupBytes.Load())/(1<<20), float64(*backupRate)/(1<<20))
	mem := memKiB(pid)
	fmt.Printf("RESULT memory vmrss_mib=%.1f vmhwm_mib=%.1f (goal < 64) rss_anon_mib=%.1f rss_file_mib=%.1f (the store's mapped pages) load=%s\n",
		float64(mem["VmRSS"])/1024, float64(mem["VmHWM"])/1024, float64(mem["RssAnon"])/1024, float64(mem["RssFile"])/1024, loadavg())
}

func orDemo(s string) string {
	if s == "" {
		return "--demo"
	}
	return s
}

func took(ns int64) string {
	if ns == 0 {
		return "NOT done in the phase"
	}
	return fmt.Sprintf("done in %.1f s", time.Duration(ns).Seconds())
}

type registersConfig struct {
	base                 string
	n                    int
	saleEvery, listEvery time.Duration
	ids                  []string
}

// slowAnswer is -slow: answers slower than it are printed as they come.
var slowAnswer time.Duration

// phase is one phase's latencies by kind.
type phase struct {
	name  string
	start time.Time
	mu    sync.Mutex
	lat   map[string][]time.Duration
	errs  map[string]int
	seen  map[string]string // a sample error by kind
	d     time.Duration
}

func (p *phase) add(kind string, d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.errs[kind]++
		p.seen[kind] = err.Error()
		return
	}
	p.lat[kind] = append(p.lat[kind], d)
	if slowAnswer > 0 && d > slowAnswer {
		fmt.Printf("SLOW phase=%s at=%.3fs kind=%s ms=%.1f\n", p.name, time.Since(p.start).Seconds()-d.Seconds(), kind, float64(d.Microseconds())/1000)
	}
}

// run runs the registers for at least d and while more reports true
// (polled every 200 ms).
func (c registersConfig) run(name string, d time.Duration, more func() bool) *phase {
	p := &phase{name: name, start: time.Now(), lat: map[string][]time.Duration{}, errs: map[string]int{}, seen: map[string]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range c.n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.register(i, p, stop, &saleSeq)
		}()
	}
	start := time.Now()
	for {
		busy := more != nil && more() // polled throughout: it notes when things end
		if time.Since(start) >= d && !busy {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	p.d = time.Since(start)
	return p
}

var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

// saleSeq numbers the sales of every phase: each receipt has an id of its own.
var saleSeq atomic.Int64

// register is one register: hello on start and every 30 s, a list every
// listEvery, a sale (the bill, then its receipt) every saleEvery, each
// jittered, over one keep-alive connection as a register's app keeps.
func (c registersConfig) register(i int, p *phase, stop chan struct{}, seq *atomic.Int64) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	device := fmt.Sprintf("rush-register-%02d", i)
	jitter := func(d time.Duration) time.Duration { return d/2 + rand.N(d) }
	now := time.Now()
	// Registers are switched on one by one, not in the same millisecond:
	// each says hello at its own moment in the phase's first second.
	next := map[string]time.Time{"hello": now.Add(rand.N(time.Second)), "list": now.Add(rand.N(c.listEvery)), "sale": now.Add(rand.N(c.saleEvery))}
	for {
		k, at := "", time.Time{}
		for kind, t := range next {
			if k == "" || t.Before(at) {
				k, at = kind, t
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Until(at)):
		}
		switch k {
		case "hello":
			d, err := get(client, c.base+"/api/v2/hello", device)
			p.add("hello", d, err)
			next[k] = time.Now().Add(jitter(30 * time.Second))
		case "list":
			d, err := get(client, c.base+"/api/v2/list", device)
			p.add("list", d, err)
			next[k] = time.Now().Add(jitter(c.listEvery))
		case "sale":
			id := c.ids[rand.IntN(len(c.ids))]
			d, err := get(client, c.base+"/api/v2/bill/byid/"+id, device)
			p.add("bill", d, err)
			n := seq.Add(1)
			// The bill id is not a stored bill's: the store's bills stay as
			// they were, so both phases answer the same lists.
			body := fmt.Sprintf(`{"id":"rush-%s-%s-%d","timestamp":%d,"type":"ReceiptCreated","data":{"type":"SELL","deviceId":%q,"extras":{"billId":"%d"},"totalAmount":2442.5,"positions":[{"productName":"Лампа настольная","quantity":1,"price":2442.5,"sum":2442.5}]}}`,
				runID, device, n, time.Now().UnixMilli(), device, 7000000+n)
			d, err = post(client, c.base+"/api/v2/receipts", device, body)
			p.add("receipt", d, err)
			next[k] = time.Now().Add(jitter(c.saleEvery))
		}
	}
}

func get(c *http.Client, url, device string) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(c, req, device)
}

func post(c *http.Client, url, device, body string) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return do(c, req, device)
}

// do times one exchange, from sending to the end of the answer.
func do(c *http.Client, req *http.Request, device string) (time.Duration, error) {
	req.Header.Set("X-Evotor-Device-UUID", device)
	t := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	return d, nil
}

func (p *phase) report(name, loadBefore string, cpuBefore int64, pid int) {
	cpu := cpuMS(pid) - cpuBefore
	for _, k := range kinds {
		l := p.lat[k]
		slices.Sort(l)
		q := func(f float64) float64 {
			if len(l) == 0 {
				return 0
			}
			return float64(l[int(f*float64(len(l)-1))].Microseconds()) / 1000
		}
		var mx float64
		if len(l) > 0 {
			mx = float64(l[len(l)-1].Microseconds()) / 1000
		}
		fmt.Printf("RESULT phase=%s kind=%s n=%d errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f p99_met=%s max_met=%s\n",
			name, k, len(l), p.errs[k], q(0.5), q(0.99), mx, yes(len(l) > 0 && q(0.99) < 5), yes(len(l) > 0 && mx < 50))
		if e, ok := p.seen[k]; ok {
			fmt.Printf("rush: phase %s %s error, e.g.: %s\n", name, k, e)
		}
	}
	mem := memKiB(pid)
	fmt.Printf("RESULT phase=%s seconds=%.1f daemon_cpu_pct_of_core=%.1f vmrss_mib=%.1f vmhwm_mib=%.1f rss_anon_mib=%.1f rss_file_mib=%.1f load_before=%s load_after=%s\n",
		name, p.d.Seconds(), 100*float64(cpu)/float64(p.d.Milliseconds()), float64(mem["VmRSS"])/1024, float64(mem["VmHWM"])/1024,
		float64(mem["RssAnon"])/1024, float64(mem["RssFile"])/1024, loadBefore, loadavg())
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// openIDs lists the daemon's open bills.
func openIDs(base string) []string {
	resp, err := http.Get(base + "/api/v2/list")
	check(err)
	defer resp.Body.Close()
	var sums []struct {
		ID json.Number `json:"id"`
	}
	check(json.NewDecoder(resp.Body).Decode(&sums))
	ids := make([]string, len(sums))
	for i, s := range sums {
		ids[i] = s.ID.String()
	}
	return ids
}

// queue posts n receipts from 20 registers at once and returns how many
// were accepted.
func queue(base string, n int) int {
	var ok atomic.Int64
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second}
			device := fmt.Sprintf("queue-register-%02d", w)
			for i := w; i < n; i += 20 {
				body := fmt.Sprintf(`{"id":"queued-%s-%d","type":"ReceiptCreated","data":{"type":"SELL","deviceId":%q,"extras":{"billId":"%d"},"totalAmount":4604.04}}`,
					runID, i, device, 8000000+i)
				if _, err := post(client, base+"/api/v2/receipts", device, body); err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// outbox reads the receipts waiting for the upstream; -1 when unknown.
func outbox(base string) int {
	resp, err := http.Get(base + "/admin/api/status")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st struct {
		Outbox *int `json:"outbox"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil || st.Outbox == nil {
		return -1
	}
	return *st.Outbox
}

// slowBackup reads /admin/api/backup at rate bytes/s until it ends or ctx
// does, as a backup to a slow disk or over a slow link would.
func slowBackup(ctx context.Context, base string, rate int, n *atomic.Int64, phaseStart time.Time) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/admin/api/backup", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			fmt.Printf("rush: backup: %v\n", err)
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Printf("rush: backup answered %d\n", resp.StatusCode)
		return
	}
	fmt.Printf("rush: backup's snapshot ready (headers) at %.3f s into the rush\n", time.Since(phaseStart).Seconds())
	buf := make([]byte, 64<<10)
	start := time.Now()
	for ctx.Err() == nil {
		m, err := resp.Body.Read(buf)
		n.Add(int64(m))
		if err != nil {
			if err != io.EOF && ctx.Err() == nil {
				fmt.Printf("rush: backup: %v\n", err)
			}
			return
		}
		// Keep to rate: sleep until the bytes read so far are due.
		due := start.Add(time.Duration(float64(n.Load()) / float64(rate) * float64(time.Second)))
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(due)):
		}
	}
}

func cpuMS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + st) * 10 // clock ticks of 10 ms (USER_HZ 100)
}

func memKiB(pid int) map[string]int {
	m := map[string]int{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) > 0 {
			m[k], _ = strconv.Atoi(f[0])
		}
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	// On disk before the daemon starts: its first fsync would flush the
	// whole copy and stall the first receipts.
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func check(err error) {
	if err != nil {
		log.Fatalf("rush: %v", err)
	}
}
