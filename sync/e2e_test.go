package sync_test

// End-to-end tests of sync with real processes: the shopbridge daemon
// (built once in TestMain), the upstream simulator (shopbridge crmsim) and
// registers (this test binary re-executed as a register) run as separate
// processes and talk over loopback HTTP. They take about two minutes; -short
// skips them.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/daemontest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/testbin"
	upsync "github.com/shopbridge/shopbridge/sync"
)

var binary string

func TestMain(m *testing.M) {
	if os.Getenv("SHOPBRIDGE_E2E_REGISTER") != "" {
		os.Exit(registerMain())
	}
	testbin.Main(m, &binary)
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real processes skipped in -short mode")
	}
}

// ---- processes ----

// sim is a running simulator process.
type sim struct {
	*daemontest.Process
	api string
	ctl *crmsim.Control
}

var simRE = regexp.MustCompile(`^crmsim api=(\S+) control=(\S+)`)

func startSim(t testing.TB, args ...string) *sim {
	t.Helper()
	p, m := daemontest.StartProcess(t, binary, nil, simRE, append([]string{"crmsim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"}, args...)...)
	return &sim{Process: p, api: m[1], ctl: &crmsim.Control{URL: m[2]}}
}

func (s *sim) fault(t testing.TB, f crmsim.Fault) {
	t.Helper()
	if err := s.ctl.SetFault(f); err != nil {
		t.Fatal(err)
	}
}

func (s *sim) receipts(t testing.TB) []crmsim.Receipt {
	t.Helper()
	rs, err := s.ctl.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (s *sim) delivered(t testing.TB) int {
	n := 0
	for _, r := range s.receipts(t) {
		if r.Delivered {
			n++
		}
	}
	return n
}

// daemon is a running shopbridge run.
type daemon struct{ *daemontest.Daemon }

// startDaemon runs shopbridge run against upstream (daemontest.Start with
// this suite's binary), syncing every second.
func startDaemon(t testing.TB, data, upstream string, args ...string) *daemon {
	t.Helper()
	all := append([]string{"--upstream", upstream, "--sync-interval", "1s"}, args...)
	return &daemon{daemontest.Start(t, binary, data, nil, all...)}
}

type statusDoc struct {
	Upstream      string     `json:"upstream"`
	UpstreamSince *time.Time `json:"upstream_since"`
	LastPullAt    *time.Time `json:"last_pull_at"`
	LastPushAt    *time.Time `json:"last_push_at"`
	Outbox        int        `json:"outbox"`
	Parked        int        `json:"parked"`
	ParkedList    []struct {
		EventID string `json:"event_id"`
		Answer  string `json:"answer"`
	} `json:"parked_receipts"`
}

func (d *daemon) status(t testing.TB) statusDoc {
	t.Helper()
	var st statusDoc
	code, b := get(t, d.Base+"/admin/api/status")
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("status: %d %s", code, b)
	}
	return st
}

var httpc = &http.Client{Timeout: 30 * time.Second}

func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := httpc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// ---- registers ----

// regReceipt is receipt i of a register: its event id, body, headers and
// order key, the same in the register process and in the test.
type regReceipt struct {
	id, key string
	body    []byte
	headers map[string]string
}

func registerReceipt(tag string, reg, i int) regReceipt {
	device := fmt.Sprintf("20251202-AA8B-407D-80BF-%012d", reg)
	id := fmt.Sprintf("%s-r%02d-%05d", tag, reg, i)
	typ, billID, key := "SELL", "", "device:"+device
	if i%5 != 4 {
		// Two receipts a bill: a SELL, then a PAYBACK that must follow it.
		billID = strconv.Itoa(7000000 + reg*10000 + i/2)
		key = "bill:" + billID
		if i%2 == 1 {
			typ = "PAYBACK"
		}
	}
	extras := `{}`
	if billID != "" {
		extras = fmt.Sprintf(`{"billId": %q, "settlementMethod": "FullSettlement"}`, billID)
	}
	body := fmt.Sprintf(`{"id": %q, "timestamp": %d, "type": "ReceiptCreated", "version": 2, "data": {"id": "%s-d", "type": %q, "deviceId": %q, "storeId": "20251202-D77B-406B-80A6-EBCECD5C3536", "dateTime": "2026-03-22T21:44:31.000+0000", "totalAmount": 4604.04, "items": [{"name": "Шу пуэр «Культура»", "price": 18.27, "quantity": 100, "sumPrice": 1827.00}], "extras": %s}}`,
		id, 1774215871000+int64(i), id, typ, device, extras)
	return regReceipt{id: id, key: key, body: []byte(body), headers: map[string]string{
		"X-Evotor-Store-Uuid":  "20251202-D77B-406B-80A6-EBCECD5C3536",
		"X-Evotor-Device-Uuid": device,
		"X-Evotor-User-Id":     fmt.Sprintf("01-%015d", reg),
	}}
}

// registerMain is the register process: it posts its receipts one after
// another, each until the daemon answers 200.
func registerMain() int {
	base, tag := os.Getenv("REG_BASE"), os.Getenv("REG_TAG")
	reg, _ := strconv.Atoi(os.Getenv("REG_ID"))
	from, _ := strconv.Atoi(os.Getenv("REG_FROM"))
	n, _ := strconv.Atoi(os.Getenv("REG_COUNT"))
	c := &http.Client{Timeout: 10 * time.Second}
	for i := from; i < from+n; i++ {
		r := registerReceipt(tag, reg, i)
		deadline := time.Now().Add(60 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodPost, base+"/api/v2/receipts", bytes.NewReader(r.body))
			for k, v := range r.headers {
				req.Header.Set(k, v)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer register-token")
			resp, err := c.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
				if resp.StatusCode < 500 {
					fmt.Fprintf(os.Stderr, "register %d: receipt %s: %s\n", reg, r.id, resp.Status)
					return 1
				}
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "register %d: receipt %s not accepted: %v\n", reg, r.id, err)
				return 1
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return 0
}

// runRegisters runs n register processes posting count receipts each
// (from index from) and waits for all of them.
func runRegisters(t testing.TB, base, tag string, n, from, count int) []regReceipt {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var wg gosync.WaitGroup
	errs := make(chan string, n)
	for reg := range n {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), "SHOPBRIDGE_E2E_REGISTER=1", "REG_BASE="+base, "REG_TAG="+tag,
			"REG_ID="+strconv.Itoa(reg), "REG_FROM="+strconv.Itoa(from), "REG_COUNT="+strconv.Itoa(count))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Sprintf("register %d: %v: %s", reg, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	var want []regReceipt
	for reg := range n {
		for i := from; i < from+count; i++ {
			want = append(want, registerReceipt(tag, reg, i))
		}
	}
	return want
}

// checkArrivals checks the simulator's deliveries against what the
// registers sent: every receipt delivered, byte for byte with its X-Evotor-*
// headers, the first deliveries of each order key in the registers' order.
// It returns how many deliveries were duplicates, by event id.
func checkArrivals(t testing.TB, rs []crmsim.Receipt, want []regReceipt) map[string]int {
	t.Helper()
	first := map[string]crmsim.Receipt{}
	dups := map[string]int{}
	for _, r := range rs {
		if !r.Delivered {
			continue
		}
		if f, ok := first[r.EventID]; ok {
			dups[r.EventID]++
			if !bytes.Equal(f.Body, r.Body) {
				t.Errorf("receipt %s delivered twice with different bytes", r.EventID)
			}
			continue
		}
		first[r.EventID] = r
	}
	lastSeq := map[string]int{}
	lost := 0
	for _, w := range want {
		g, ok := first[w.id]
		if !ok {
			lost++
			if lost <= 5 {
				t.Errorf("receipt %s lost", w.id)
			}
			continue
		}
		if !bytes.Equal(g.Body, w.body) {
			t.Errorf("receipt %s changed on the way:\n got %s\nwant %s", w.id, g.Body, w.body)
		}
		for k, v := range w.headers {
			if got := headerFold(g.Headers, k); got != v {
				t.Errorf("receipt %s header %s = %q, want %q", w.id, k, got, v)
			}
		}
		if g.Seq < lastSeq[w.key] {
			t.Errorf("receipt %s overtook an earlier receipt of %s", w.id, w.key)
		}
		lastSeq[w.key] = g.Seq
	}
	if lost > 0 {
		t.Errorf("%d of %d receipts lost", lost, len(want))
	}
	if extra := len(first) - (len(want) - lost); extra != 0 {
		t.Errorf("%d receipts arrived that no register sent", extra)
	}
	return dups
}

func headerFold(h map[string]string, k string) string {
	for hk, v := range h {
		if strings.EqualFold(hk, k) {
			return v
		}
	}
	return ""
}

// ---- tests ----

// TestE2EUpstreamDownFromStart: a shop whose store holds bills from an
// earlier run starts while the upstream is down. Registers get the cached
// bills and post receipts; when the upstream comes up every receipt
// arrives exactly once, byte-identical, with its headers, in per-bill order.
func TestE2EUpstreamDownFromStart(t *testing.T) {
	skipShort(t)
	s := startSim(t)
	data := t.TempDir()
	d := startDaemon(t, data, s.api)
	poll.Until(t, "the first pull", 30*time.Second, func() bool {
		c1, b := get(t, d.Base+"/api/v2/bill/byid/206929")
		c2, _ := get(t, d.Base+"/api/v2/bill/byid/49040")
		return c1 == 200 && c2 == 200 && bytes.Contains(b, []byte(`"206929C"`))
	})
	d.Stop(t)

	s.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	d = startDaemon(t, data, s.api)
	for _, path := range []string{"/api/v2/list", "/api/v2/bill/byid/206929", "/api/v2/bill/byid/49040"} {
		code, b := get(t, d.Base+path)
		if code != 200 || len(b) < 10 {
			t.Errorf("GET %s with the upstream down: %d %s", path, code, b)
		}
	}
	want := runRegisters(t, d.Base, "down", 5, 0, 40)
	st := d.status(t)
	if st.Upstream != "offline" || st.Outbox != len(want) {
		t.Errorf("status with the upstream down: %+v, want offline with %d waiting", st, len(want))
	}
	if n := s.delivered(t); n != 0 {
		t.Fatalf("%d receipts delivered through a refusing upstream", n)
	}

	s.fault(t, crmsim.Fault{})
	poll.Until(t, "the outbox to drain", 60*time.Second, func() bool { return d.status(t).Outbox == 0 })
	if dups := checkArrivals(t, s.receipts(t), want); len(dups) > 0 {
		t.Errorf("duplicates after an outage: %v", dups)
	}
	st = d.status(t)
	if st.Upstream != "online" || st.LastPushAt == nil || st.LastPullAt == nil {
		t.Errorf("status after the outage: %+v", st)
	}
}

// TestE2EFlapping: the upstream refuses connections on and off every 300 ms
// while 20 registers post 5,000 receipts: none lost, per-bill order kept,
// and none sent again after the daemon saw its 200. The simulator may still
// count a receipt twice when it drops a connection after writing a 200 the
// daemon never received (the daemon must resend those); such duplicates
// carry the same event id and bytes and are at most the receipts in flight
// at each drop (sent and not yet recorded: at most twice the window's cap).
func TestE2EFlapping(t *testing.T) {
	skipShort(t)
	const flap, inFlight = 300 * time.Millisecond, 2 * upsync.DefaultInFlight
	s := startSim(t)
	d := startDaemon(t, t.TempDir(), s.api)
	poll.Until(t, "online", 30*time.Second, func() bool { return d.status(t).Upstream == "online" })
	s.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse, Flap: flap})
	start := time.Now()
	want := runRegisters(t, d.Base, "flap", 20, 0, 250)
	posted := time.Since(start)
	// Let it run through more flaps, then keep the upstream up.
	poll.Until(t, "most receipts through the flapping", 90*time.Second, func() bool {
		return d.status(t).Outbox < len(want)/10
	})
	flapping := time.Since(start)
	s.fault(t, crmsim.Fault{})
	poll.Until(t, "the outbox to drain", 60*time.Second, func() bool { return d.status(t).Outbox == 0 })
	t.Logf("20 registers posted %d receipts in %v; all delivered after %v", len(want), posted.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
	rs := s.receipts(t)
	dups := checkArrivals(t, rs, want)
	if seen := metric(t, d, `shopbridge_upstream_pushes_total{result="delivered"}`); seen != len(want) {
		t.Errorf("the daemon saw %d 200s for %d receipts: it sent some again after a 200", seen, len(want))
	}
	drops := int(flapping/(2*flap)) + 1
	n := 0
	for _, c := range dups {
		n += c
	}
	if n > drops*inFlight {
		t.Errorf("%d duplicates, more than %d in flight at each of ~%d connection drops", n, inFlight, drops)
	}
	t.Logf("%d arrivals; %d duplicates from answers lost in ~%d connection drops: %v", len(rs), n, drops, dups)
}

// metric reads one sample of the daemon's /metrics.
func metric(t testing.TB, d *daemon, name string) int {
	t.Helper()
	_, b := get(t, d.Base+"/metrics")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return int(n)
		}
	}
	t.Fatalf("no metric %s in:\n%s", name, b)
	return 0
}

// TestE2EKillMidPush: the daemon is SIGKILLed 20 times while it pushes a
// backlog to a slow upstream. After each restart the outbox resumes;
// nothing is lost; a duplicate is only a receipt in flight at a kill (sent
// and not yet recorded: at most twice --push-in-flight per kill), sent
// again with the same event id and bytes. The window is capped at 16 here
// so that the backlog outlasts the kills.
func TestE2EKillMidPush(t *testing.T) {
	skipShort(t)
	const kills, window = 20, 16
	const inFlight = 2 * window
	s := startSim(t, "--latency", "100ms")
	data := t.TempDir()
	s.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	flags := []string{"--push-in-flight", strconv.Itoa(window)}
	d := startDaemon(t, data, s.api, flags...)
	want := runRegisters(t, d.Base, "kill", 10, 0, 150)
	s.fault(t, crmsim.Fault{})

	// Arrivals (a cheap count) show progress; fetching every receipt to
	// count deliveries would slow the loop down and let the backlog drain.
	arrivals := func() int {
		st, err := s.ctl.State()
		if err != nil {
			t.Fatal(err)
		}
		return st.Receipts
	}
	var killedAt []time.Time
	for k := range kills {
		before := arrivals()
		poll.Until(t, fmt.Sprintf("pushing to resume after restart %d", k), 60*time.Second, func() bool {
			return arrivals() >= before+5
		})
		if d.status(t).Outbox == 0 {
			t.Fatalf("the backlog drained after %d kills, before the test could kill %d times", k, kills)
		}
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		d.Kill()
		killedAt = append(killedAt, time.Now())
		d = startDaemon(t, data, s.api, flags...)
	}
	poll.Until(t, "the outbox to drain", 90*time.Second, func() bool { return d.status(t).Outbox == 0 })
	rs := s.receipts(t)
	dups := checkArrivals(t, rs, want)

	// Each duplicate's first delivery happened in the run a kill ended:
	// count them per kill.
	firstAt := map[string]time.Time{}
	for _, r := range rs {
		if _, ok := firstAt[r.EventID]; r.Delivered && !ok {
			firstAt[r.EventID] = r.Time
		}
	}
	perKill := make([]int, kills+1)
	total := 0
	for id, n := range dups {
		run := sort.Search(len(killedAt), func(i int) bool { return killedAt[i].After(firstAt[id]) })
		perKill[run] += n
		total += n
	}
	for run, n := range perKill {
		if n > inFlight {
			t.Errorf("run %d: %d duplicates, more than the %d receipts in flight", run, n, inFlight)
		}
	}
	if perKill[kills] > 0 {
		t.Errorf("%d duplicates in the last run, which was not killed", perKill[kills])
	}
	t.Logf("%d receipts, %d kills, %d duplicate deliveries (per run %v)", len(want), kills, total, perKill)
}

// TestE2EFaults: each failure mode of the simulator in turn. The daemon
// stays up; once the upstream is offline it answers registers from the
// store at once (hits and misses); it journals the fault and recovers by
// itself, delivering what waited.
func TestE2EFaults(t *testing.T) {
	skipShort(t)
	s := startSim(t)
	d := startDaemon(t, t.TempDir(), s.api)
	poll.Until(t, "the first pull", 30*time.Second, func() bool {
		c1, _ := get(t, d.Base+"/api/v2/bill/byid/206929")
		c2, _ := get(t, d.Base+"/api/v2/bill/byid/350255")
		return c1 == 200 && c2 == 200
	})
	for i, f := range []crmsim.Fault{
		{Mode: crmsim.FaultRefuse},
		{Mode: crmsim.FaultHang},
		{Mode: crmsim.FaultSlow, Latency: 20 * time.Second},
		{Mode: crmsim.Fault500},
		{Mode: crmsim.Fault429},
		{Mode: crmsim.Fault400},
		{Mode: crmsim.FaultCut},
		{Mode: crmsim.FaultMalformed},
		{Mode: crmsim.FaultHuge},
		{Mode: crmsim.FaultRefuse, Flap: 250 * time.Millisecond},
	} {
		name := f.Mode
		if f.Flap > 0 {
			name += "-flapping"
		}
		t.Run(name, func(t *testing.T) {
			sinceJournal := time.Now()
			s.fault(t, f)
			code, _ := get(t, d.Base+"/api/v2/bill/byid/350255") // a hit, whatever the upstream does
			if code != 200 {
				t.Errorf("cached bill: %d", code)
			}
			// 429 is the upstream busy, not down: it stays online while
			// the backoff holds the calls (sync/backoff.go).
			busy := f.Mode == crmsim.Fault429
			if f.Flap == 0 && !busy {
				poll.Until(t, "offline", 60*time.Second, func() bool { return d.status(t).Upstream == "offline" })
				checkFastAnswers(t, d)
			}
			if busy {
				poll.Until(t, "a 429 journaled", 60*time.Second, func() bool { return journalHasFault(t, d, sinceJournal) })
				if st := d.status(t); st.Upstream != "online" {
					t.Errorf("upstream %s on 429s, want online (busy)", st.Upstream)
				}
			}
			rcpt := registerReceipt("fault", 0, i*10+4) // no bill: it keeps the bills open
			runRegisterOne(t, d.Base, "fault", 0, i*10+4)
			s.fault(t, crmsim.Fault{})
			poll.Until(t, "online", 60*time.Second, func() bool { return d.status(t).Upstream == "online" })
			if f.Mode == crmsim.Fault400 {
				// A 400 parks what was in flight; the operator retries it.
				for _, p := range d.status(t).ParkedList {
					out, err := exec.Command(binary, "outbox", "retry", p.EventID, "--addr", d.Base).CombinedOutput()
					if err != nil {
						t.Fatalf("outbox retry: %v: %s", err, out)
					}
				}
			}
			poll.Until(t, "the receipt delivered", 60*time.Second, func() bool {
				for _, r := range s.receipts(t) {
					if r.EventID == rcpt.id && r.Status == 200 {
						return true
					}
				}
				return false
			})
			poll.Until(t, "the outbox to drain", 60*time.Second, func() bool { return d.status(t).Outbox == 0 })
			if f.Flap == 0 && !busy && !journalHas(t, d, sinceJournal, "UPSTREAM_STATE", "online -> offline") {
				t.Error("going offline is not in the journal")
			}
			if !journalHasFault(t, d, sinceJournal) {
				t.Error("no failed upstream exchange in the journal")
			}
			code, _ = get(t, d.Base+"/api/v2/bill/byid/206929")
			if code != 200 {
				t.Errorf("after recovery, bill 206929: %d", code)
			}
		})
	}
	select {
	case <-d.Done():
		t.Fatalf("the daemon exited:\n%s", d.Logs())
	default:
	}
}

// runRegisterOne posts receipt i of register reg from a register process.
func runRegisterOne(t testing.TB, base, tag string, reg, i int) {
	t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "SHOPBRIDGE_E2E_REGISTER=1", "REG_BASE="+base, "REG_TAG="+tag,
		"REG_ID="+strconv.Itoa(reg), "REG_FROM="+strconv.Itoa(i), "REG_COUNT=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("register: %v: %s", err, out)
	}
}

// checkFastAnswers times register calls while the upstream is offline: a
// cached bill, the list, and misses (unknown id and number) that must not
// wait for the upstream. The goal is 50 ms; the median of five is logged
// against it and held to 500 ms, a quarter of the read-through timeout, so
// any waiting on the upstream (its timeouts are seconds) fails the test
// while a slow, loaded machine does not.
func checkFastAnswers(t *testing.T, d *daemon) {
	t.Helper()
	for _, c := range []struct {
		path string
		code int
	}{
		{"/api/v2/bill/byid/350255", 200},
		{"/api/v2/list", 200},
		{"/api/v2/bill/byid/987654321", 404},
		{"/api/v2/list?number=NO-SUCH-BILL", 200},
	} {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			code, b := get(t, d.Base+c.path)
			ds = append(ds, time.Since(start))
			if code != c.code {
				t.Errorf("GET %s offline: %d %s, want %d", c.path, code, b, c.code)
			}
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		t.Logf("GET %s offline: median %v (goal 50 ms)", c.path, ds[2])
		if ds[2] > 500*time.Millisecond {
			t.Errorf("GET %s offline: median %v (all %v): it waited for the upstream", c.path, ds[2], ds)
		}
	}
}

type journalRow struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Status int       `json:"status"`
	Note   string    `json:"note"`
	// Repeats are later polls with the same answer folded into this row.
	Repeats int `json:"repeats"`
}

func journal(t testing.TB, d *daemon, since time.Time, kind string) []journalRow {
	t.Helper()
	q := "?since=" + since.UTC().Format(time.RFC3339Nano)
	if kind != "" {
		q += "&kind=" + kind
	}
	code, b := get(t, d.Base+"/admin/api/journal"+q)
	var rows []journalRow
	if code != 200 || json.Unmarshal(b, &rows) != nil {
		t.Fatalf("journal: %d %.300s", code, b)
	}
	return rows
}

func journalHas(t testing.TB, d *daemon, since time.Time, kind, note string) bool {
	var found bool
	// The journal is written behind the answers: give it a moment.
	deadline := time.Now().Add(10 * time.Second)
	for !found && time.Now().Before(deadline) {
		for _, r := range journal(t, d, since, kind) {
			if strings.Contains(r.Note, note) {
				found = true
			}
		}
		if !found {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return found
}

func journalHasFault(t testing.TB, d *daemon, since time.Time) bool {
	for _, r := range journal(t, d, since, "") {
		if strings.HasPrefix(r.Kind, "UPSTREAM_") && r.Kind != "UPSTREAM_STATE" && r.Note != "" {
			return true
		}
	}
	return false
}

// TestE2EBillChanges: a bill changed upstream is in the store within two
// sync intervals; a new upstream bill is found at once by number=
// read-through; a bill the upstream drops leaves the no-parameter list.
func TestE2EBillChanges(t *testing.T) {
	skipShort(t)
	const interval = time.Second
	s := startSim(t)
	d := startDaemon(t, t.TempDir(), s.api, "--sync-interval", interval.String())
	poll.Until(t, "the first pull", 30*time.Second, func() bool {
		code, _ := get(t, d.Base+"/api/v2/bill/byid/206929")
		return code == 200
	})

	// Change price and summ of 206929.
	_, old := get(t, s.api+"/api/v2/bill/byid/206929")
	changed := bytes.Replace(old, []byte(`"price": 9093`), []byte(`"price": 9193`), 1)
	changed = bytes.Replace(changed, []byte(`"summ": 15077`), []byte(`"summ": 15177`), 1)
	if bytes.Equal(changed, old) {
		t.Fatal("bill 206929 of the simulator has no price 9093 and summ 15077 to change")
	}
	if err := s.ctl.PutBill(changed); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	poll.Until(t, "the changed bill", 30*time.Second, func() bool {
		_, b := get(t, d.Base+"/api/v2/bill/byid/206929")
		return bytes.Equal(b, bytes.TrimSpace(changed))
	})
	took := time.Since(start)
	t.Logf("a changed bill reached the store after %v (sync interval %v)", took.Round(time.Millisecond), interval)
	if took > 2*interval+time.Second {
		t.Errorf("the changed bill took %v, more than two sync intervals (%v)", took, 2*interval)
	}

	// A new bill: found at once by number.
	fresh := []byte(`{"id": 9100000000000000001, "date": "2026-03-23 09:15:00", "summ": 1999.99, "number": "NEW-1", "customer": {"id": 1, "name": "Анна "}, "products": [{"id": 1, "type": "NORMAL", "price": 1999.99, "taxrate": "22%", "itemType": 1, "prodname": "Чай", "quantity": 1, "unitname": "Штука"}], "prepayment": 0, "prepaymentEnable": true}`)
	if err := s.ctl.PutBill(fresh); err != nil {
		t.Fatal(err)
	}
	code, b := get(t, d.Base+"/api/v2/list?number=NEW-1")
	if code != 200 || !bytes.Contains(b, []byte(`9100000000000000001`)) {
		t.Errorf("number= read-through of a new bill: %d %s", code, b)
	}
	code, b = get(t, d.Base+"/api/v2/bill/byid/9100000000000000001")
	if code != 200 || !bytes.Equal(b, fresh) {
		t.Errorf("the new bill: %d %s", code, b)
	}

	// A dropped bill leaves the no-parameter list.
	if err := s.ctl.DeleteBill("49040"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "bill 49040 to leave the list", 30*time.Second, func() bool {
		_, b := get(t, d.Base+"/api/v2/list")
		return !bytes.Contains(b, []byte(`"id":49040`)) && !bytes.Contains(b, []byte(`"id": 49040`))
	})
}

// TestE2EOutboxRetry: parked receipts show in the status printer and
// "shopbridge outbox retry" puts them back.
func TestE2EOutboxRetry(t *testing.T) {
	skipShort(t)
	s := startSim(t)
	d := startDaemon(t, t.TempDir(), s.api)
	poll.Until(t, "online", 30*time.Second, func() bool { return d.status(t).Upstream == "online" })
	s.fault(t, crmsim.Fault{Mode: crmsim.Fault400, Kind: crmsim.KindReceipts})
	r := registerReceipt("park", 3, 1)
	runRegisterOne(t, d.Base, "park", 3, 1)
	poll.Until(t, "the receipt parked", 30*time.Second, func() bool { return d.status(t).Parked == 1 })
	st := d.status(t)
	if st.ParkedList[0].EventID != r.id || !strings.Contains(st.ParkedList[0].Answer, "400") {
		t.Errorf("parked: %+v", st.ParkedList)
	}
	out, err := exec.Command(binary, "outbox", "retry", "no-such-event", "--addr", d.Base).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no-such-event") {
		t.Errorf("retry of an unknown event: %v: %s", err, out)
	}
	s.fault(t, crmsim.Fault{})
	out, err = exec.Command(binary, "outbox", "retry", r.id, "--addr", d.Base).CombinedOutput()
	if err != nil {
		t.Fatalf("outbox retry: %v: %s", err, out)
	}
	poll.Until(t, "the retried receipt delivered", 30*time.Second, func() bool { return s.delivered(t) == 1 })
	poll.Until(t, "outbox and parked empty", 30*time.Second, func() bool {
		st := d.status(t)
		return st.Parked == 0 && st.Outbox == 0
	})
}

// TestE2EUpstreamLogLines reads the daemon's log: first contact is
// "upstream online" with the upstream's system, not a recovery from an
// outage that never was; an outage logs its change once, not a line per
// probe; the recovery says how long it lasted; shopbridge status shows the
// last error with its time only while the upstream fails.
func TestE2EUpstreamLogLines(t *testing.T) {
	skipShort(t)
	s := startSim(t)
	d := startDaemon(t, t.TempDir(), s.api, "--sync-interval", "200ms")
	poll.Until(t, "online", 30*time.Second, func() bool { return d.status(t).Upstream == "online" })
	// The log line follows the state change by a moment.
	poll.Until(t, "the first contact log line", 10*time.Second, func() bool {
		return strings.Contains(d.Logs(), `msg="upstream online"`)
	})
	first := logLines(d.Logs(), `msg="upstream online"`)
	if len(first) != 1 || !strings.Contains(first[0], `system="`+crmsim.DefaultSystem+`"`) ||
		strings.Contains(first[0], "offline_for") || strings.Contains(first[0], "unreachable_for") {
		t.Errorf("first contact logged as %q, want one 'upstream online' with system %q and no outage:\n%s", first, crmsim.DefaultSystem, d.Logs())
	}
	if strings.Contains(d.Logs(), "offline -> online") {
		t.Errorf("first contact timed as an outage:\n%s", d.Logs())
	}

	mark := len(d.Logs())
	sinceJournal := time.Now()
	s.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	poll.Until(t, "offline", 30*time.Second, func() bool { return d.status(t).Upstream == "offline" })
	// Several probes fail (the journal has each, the same failure folded
	// into one row with a count) while the log stays quiet.
	poll.Until(t, "five failed probes", 60*time.Second, func() bool {
		n := 0
		for _, r := range journal(t, d, sinceJournal, "UPSTREAM_HELLO") {
			if r.Note != "" {
				n += 1 + r.Repeats
			}
		}
		return n >= 5
	})
	st := runCLI(t, "status", "--addr", d.Base)
	if !strings.Contains(st, "last error: ") || !strings.Contains(st, " ago), ") || !strings.Contains(st, "connection refused") {
		t.Errorf("status while offline lacks the last error with its time:\n%s", st)
	}
	outage := d.Logs()[mark:]
	if n := len(logLines(outage, `msg="upstream offline"`)); n != 1 {
		t.Errorf("%d 'upstream offline' lines for one outage:\n%s", n, outage)
	}
	if n := len(logLines(outage, "part=sync", "level=WARN")); n > 2 {
		t.Errorf("%d sync WARN lines in an outage of five probes, want the change and at most one failure before it:\n%s", n, outage)
	}

	mark = len(d.Logs())
	s.fault(t, crmsim.Fault{})
	poll.Until(t, "online again", 30*time.Second, func() bool { return d.status(t).Upstream == "online" })
	poll.Until(t, "the recovery log line", 10*time.Second, func() bool {
		return strings.Contains(d.Logs()[mark:], `msg="upstream online again"`)
	})
	again := logLines(d.Logs()[mark:], `msg="upstream online again"`)
	if len(again) != 1 || !strings.Contains(again[0], "offline_for=") || !strings.Contains(again[0], "probes_failed=") {
		t.Errorf("recovery logged as %q", again)
	}
	if st := runCLI(t, "status", "--addr", d.Base); strings.Contains(st, "last error") {
		t.Errorf("status once the upstream is back still shows the last error:\n%s", st)
	}
}

// logLines are the lines of logs holding every one of substrs.
func logLines(logs string, substrs ...string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		ok := l != ""
		for _, s := range substrs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// runCLI runs a shopbridge command and returns what it printed; its exit
// status is the caller's to judge from the text (status exits by the OS
// service's state, which this machine does not have).
func runCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("shopbridge %q: %v", args, err)
	}
	return string(out)
}

// TestE2EMaxConcurrent: the simulator serves 4 calls at once and answers
// 429 to the rest; the daemon, at its default cap of 64, drains a backlog
// through it: every receipt delivered once, in bill order, none parked,
// few refused, and the window ends near the upstream's limit (as the
// upstream sees it).
func TestE2EMaxConcurrent(t *testing.T) {
	skipShort(t)
	const limit = 4
	s := startSim(t, "--latency", "20ms", "--max-concurrent", strconv.Itoa(limit))
	s.fault(t, crmsim.Fault{Mode: crmsim.FaultRefuse})
	d := startDaemon(t, t.TempDir(), s.api)
	want := runRegisters(t, d.Base, "mc", 10, 0, 80)
	s.fault(t, crmsim.Fault{})
	poll.Until(t, "the outbox to drain", 90*time.Second, func() bool { return d.status(t).Outbox == 0 })
	rs := s.receipts(t)
	if dups := checkArrivals(t, rs, want); len(dups) > 0 {
		t.Errorf("duplicates: %v", dups)
	}
	refused := 0
	for _, r := range rs {
		if r.Fault == crmsim.FaultMaxConcurrent {
			refused++
		}
	}
	st, err := s.ctl.State()
	if err != nil {
		t.Fatal(err)
	}
	frac := float64(refused) / float64(len(rs))
	window := metric(t, d, "shopbridge_upstream_push_window")
	// Where the window ends, measured where the limit is: the share of
	// the last quarter of receipt calls (after slow start's overshoot)
	// that the simulator refused. A window of w > limit that the daemon
	// fills has w-limit of every w refused, so the old bound of a window
	// of limit+1 is a share of 1/(limit+1). The daemon's own figure is
	// only logged: it counts besides the calls on their way between the
	// two (answered by the simulator, not yet taken by the daemon),
	// which on a loaded machine are a few more with nothing wrong: a full
	// go test ./... once ended this test at a window of 7.
	tail := rs[len(rs)*3/4:]
	tailRefused := 0
	for _, r := range tail {
		if r.Fault == crmsim.FaultMaxConcurrent {
			tailRefused++
		}
	}
	tailFrac := float64(tailRefused) / float64(len(tail))
	t.Logf("%d of %d receipt calls refused (%.1f%%), %d of the last %d (%.1f%%); %d calls refused in all; up to %d open at once; window now %d",
		refused, len(rs), 100*frac, tailRefused, len(tail), 100*tailFrac, st.Refused, st.PeakCalls, window)
	if frac > 0.15 {
		t.Errorf("%.1f%% of receipt calls refused: the daemon does not follow the upstream's limit of %d", 100*frac, limit)
	}
	if tailFrac > 1/float64(limit+1) {
		t.Errorf("%.1f%% of the last %d receipt calls refused (push window %d after the drain): the window does not end near the limit of %d",
			100*tailFrac, len(tail), window, limit)
	}
	if cap := metric(t, d, "shopbridge_upstream_push_window_max"); cap != upsync.DefaultInFlight {
		t.Errorf("push window cap %d, want the default %d", cap, upsync.DefaultInFlight)
	}
	if p := d.status(t).Parked; p != 0 {
		t.Errorf("%d receipts parked on 429s", p)
	}
}
