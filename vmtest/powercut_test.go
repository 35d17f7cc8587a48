package vmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/storage"
)

// sent is a receipt as a register posted it.
type sent struct {
	id, device string
	body       []byte
}

// ledger is what the registers were told: every receipt answered 200.
type ledger struct {
	mu    sync.Mutex
	acked map[string]sent
	order []string
}

func (l *ledger) ack(s sent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.acked[s.id]; !ok {
		l.acked[s.id] = s
		l.order = append(l.order, s.id)
	}
}

func (l *ledger) get(id string) (sent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.acked[id]
	return s, ok
}

// snapshot returns the acknowledged receipts so far.
func (l *ledger) snapshot() []sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]sent, len(l.order))
	for i, id := range l.order {
		out[i] = l.acked[id]
	}
	return out
}

// register is one cash register posting receipts as fast as it can over
// its own connection. Now and then it sends a receipt a second time over
// another connection while the first attempt is still waiting, as a
// register does whose first answer got lost.
type register struct {
	device  string
	client  *http.Client
	resend  *http.Client
	n       int
	pending *sent // posted, not answered when the power went: sent again first
}

// demoBills are the ids of the bills the daemon's --demo seeds (the
// simulator's sample bills), so SELLs settle and PAYBACKs reopen real bills.
func demoBills(t testing.TB) []string {
	var ids []string
	for _, raw := range crmsim.DefaultData().Bills {
		s, err := shopbridge.ParseBill(raw)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	return ids
}

// next builds the register's next receipt: settling SELLs, PAYBACKs,
// prepayments and receipts without a bill, with text that must survive
// byte for byte.
func (r *register) next(cut int, bills []string, rng *rand.Rand) sent {
	r.n++
	id := fmt.Sprintf("pc-%02d-%s-%05d", cut, r.device, r.n)
	bill := bills[rng.IntN(len(bills))]
	var data string
	switch r.n % 5 {
	case 0:
		data = fmt.Sprintf(`{"type":"SELL","extras":{"billId":%q,"settlementMethod":"FullSettlement"}`, bill)
	case 1:
		data = fmt.Sprintf(`{"type":"SELL","extras":{"billId":%q}`, bill)
	case 2:
		data = fmt.Sprintf(`{"type":"PAYBACK","extras":{"billId":%q}`, bill)
	case 3:
		data = fmt.Sprintf(`{"type":"SELL","extras":{"billId":%q,"settlementMethod":"FullPrepayment"}`, bill)
	default:
		data = `{"type":"SELL","extras":{}`
	}
	body := fmt.Sprintf(`{"id":%q,"type":"ReceiptCreated","version":2,"timestamp":%d,"data":%s,"deviceId":%q,"items":[{"name":"Чай «Пуэр» \"Шу\" 🍵","price":13.05,"quantity":%d,"sumPrice":4604.04}],"totalAmount":4604.04}}`,
		id, time.Now().UnixMilli(), data, r.device, r.n)
	return sent{id: id, device: r.device, body: []byte(body)}
}

// post sends a receipt; err is a failed exchange (the power went).
func (r *register) post(base string, s sent) (status int, answer []byte, err error) {
	return postWith(r.client, base, s)
}

func postWith(client *http.Client, base string, s sent) (status int, answer []byte, err error) {
	req, err := http.NewRequest(http.MethodPost, base+"/api/v2/receipts", bytes.NewReader(s.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Evotor-Device-UUID", s.device)
	req.Header.Set("X-Evotor-Store-Uuid", "store-powercut")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// run posts receipts until stop is closed or an exchange fails. The
// receipt left without an answer becomes pending. early gets a signal
// when a resent receipt was answered 200 before its first attempt: the
// daemon then vouched for a receipt whose own commit had not returned.
func (r *register) run(t *testing.T, base string, cut int, bills []string, rng *rand.Rand, l *ledger, stop <-chan struct{}, early chan<- string) {
	type answer struct {
		status int
		body   []byte
		err    error
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		s := r.next(cut, bills, rng)
		first := make(chan answer, 1)
		go func() {
			st, b, err := r.post(base, s)
			first <- answer{st, b, err}
		}()
		var a answer
		if rng.IntN(3) == 0 {
			time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
			st, b, err := postWith(r.resend, base, s)
			if err == nil && st == http.StatusOK {
				l.ack(s)
				select {
				case a = <-first:
				default:
					select {
					case early <- s.id:
					default:
					}
					a = <-first
				}
			} else {
				a = <-first
				if err == nil && a.err == nil {
					t.Errorf("receipt %s sent again: %d %s", s.id, st, b)
				}
			}
		} else {
			a = <-first
		}
		if a.err != nil {
			if _, ok := l.get(s.id); !ok {
				r.pending = &s
			}
			return
		}
		if a.status != http.StatusOK {
			t.Errorf("receipt %s: %d %s", s.id, a.status, a.body)
			continue
		}
		l.ack(s)
	}
}

// retryPending sends the receipt the power cut left unanswered again, with
// the same id and bytes, as a register does: it must be 200 whether or not
// the first attempt reached the store.
func (r *register) retryPending(t *testing.T, base string, l *ledger) {
	if r.pending == nil {
		return
	}
	s := *r.pending
	status, answer, err := r.post(base, s)
	if err != nil || status != http.StatusOK {
		t.Errorf("receipt %s sent again after the power cut: %d %s %v", s.id, status, answer, err)
		return
	}
	r.pending = nil
	l.ack(s)
}

// guest is one boot of the machine.
type guest struct {
	vm                *VM
	start             time.Time
	base              string // the terminal API and /healthz, over HTTP
	admin             string // the operator endpoints, over HTTPS
	console           string
	coldReady, toHTTP time.Duration
}

var (
	readyRE = regexp.MustCompile(`(?m)^vmtest: ready`)
	mountRE = regexp.MustCompile(`(?m)^vmtest: mount (\S+) (\S+) (\S+) (\S+)`)
	ext4RE  = regexp.MustCompile(`(?m)^vmtest: ext4 (.*)$`)
	cacheRE = regexp.MustCompile(`(?m)^vmtest: write_cache (.*)$`)
	// The daemon's "listening" line says how long its own start took.
	readyMsRE = regexp.MustCompile(`msg=listening .*ready_ms=(\d+)`)
)

// tail is the end of a console, for failure messages.
func tail(s string) string {
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// powerCut runs the test; see TestPowerCut.
type powerCut struct {
	t        *testing.T
	r        *rig
	m        Machine
	dir      string
	disk     *Disk
	snapshot string // resume mode: the guest's state at "ready"
	rng      *rand.Rand
	httpc    *http.Client
	// clock is how far the guest's clock is set from the host's at each
	// boot (clock_test.go): a dead CMOS battery, a clock set ahead.
	clock time.Duration
	// current is the guest running now, killed if the test ends early.
	current *guest
}

// ext4Image makes dir/disk.img, size bytes of a fresh ext4 file system
// for a guest's disk. Inode tables and journal are written now, so the
// guest's writes are the daemon's own (no lazy initialisation in the
// background).
func ext4Image(t *testing.T, dir string, size int64) string {
	t.Helper()
	image := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(image, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(image, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	return image
}

// newPowerCut sets up the machine on disk (an NBD export in dir), its
// upstream reached at sim through the test binary's relay, and the host's
// pinning client; the guest running at the end and the disk are closed on
// cleanup.
func newPowerCut(t *testing.T, r *rig, dir string, disk *Disk, sim *sim, rng *rand.Rand) *powerCut {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &powerCut{t: t, r: r, dir: dir, disk: disk, rng: rng, httpc: pinningClient(),
		m: Machine{QEMU: r.qemu, Accel: r.accel, Kernel: r.vmlinux, Initrd: r.initrd,
			Append: "console=ttyS0 panic=-1 quiet", MemoryMB: 256,
			Disk:     "nbd+unix:///vda?socket=" + filepath.Join(dir, "nbd.sock"),
			HostPort: freePort(t), HTTPSPort: freePort(t),
			GuestFwd: fmt.Sprintf("tcp:%s-cmd:%s %s 127.0.0.1:%d", GuestUpstreamAddr, self, relayArg, sim.apiPort),
			Dir:      dir}}
	t.Cleanup(func() {
		if p.current != nil {
			p.current.vm.Kill()
		}
		disk.Close()
	})
	return p
}

// boot starts the guest on the disk and waits until it serves /healthz.
// upstream is "-" or the URL the daemon syncs with.
func (p *powerCut) boot(n int, upstream string, beforeGo func()) *guest {
	t := p.t
	t.Helper()
	g := &guest{start: time.Now(), base: fmt.Sprintf("http://127.0.0.1:%d", p.m.HostPort),
		admin:   fmt.Sprintf("https://127.0.0.1:%d", p.m.HTTPSPort),
		console: filepath.Join(p.dir, fmt.Sprintf("console-%02d.log", n))}
	if p.r.bootMode == "resume" && p.snapshot == "" {
		// Boot once up to "ready" (the kernel has not seen the disk),
		// keep that state, and resume it for every boot.
		vm, err := p.m.Boot(filepath.Join(p.dir, "console-cold.log"), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vm.WaitConsole(readyRE, 5*time.Minute); err != nil {
			vm.Kill()
			t.Fatalf("cold boot: %v\n%s", err, tail(vm.Console()))
		}
		g.coldReady = time.Since(g.start)
		snap := filepath.Join(p.dir, "ready.state")
		if err := vm.Snapshot(snap); err != nil {
			vm.Kill()
			t.Fatalf("snapshot: %v", err)
		}
		vm.Kill()
		p.snapshot = snap
		g.start = time.Now()
	}
	vm, err := p.m.Boot(g.console, p.snapshot)
	if err != nil {
		t.Fatal(err)
	}
	g.vm = vm
	if beforeGo != nil {
		beforeGo() // the guest does not touch the disk before the go line
	}
	var resumed time.Duration
	if p.snapshot != "" {
		if err := vm.Cont(); err != nil {
			vm.Kill()
			t.Fatalf("boot %d: resume: %v", n, err)
		}
		resumed = time.Since(g.start)
	} else {
		if _, err := vm.WaitConsole(readyRE, 5*time.Minute); err != nil {
			vm.Kill()
			t.Fatalf("boot %d: %v\n%s", n, err, tail(vm.Console()))
		}
		g.coldReady = time.Since(g.start)
		resumed = g.coldReady
	}
	if err := vm.Send(fmt.Sprintf("go %d %d %s", time.Now().Add(p.clock).Unix(), p.rng.Uint64(), upstream)); err != nil {
		vm.Kill()
		t.Fatalf("boot %d: %v", n, err)
	}
	p.httpc.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := p.httpc.Get(g.base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-vm.Exited():
			t.Fatalf("boot %d: the guest stopped before serving: %s\n%s", n, vm.ExitStatus(), tail(vm.Console()))
		default:
		}
		if time.Now().After(deadline) {
			vm.Kill()
			t.Fatalf("boot %d: no /healthz within 3 minutes\n%s", n, tail(vm.Console()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.toHTTP = time.Since(g.start)
	console := vm.Console()
	p.checkMount(n, console)
	ready := ""
	if m := readyMsRE.FindStringSubmatch(console); m != nil {
		ready = ", the daemon's own start " + m[1] + " ms"
	}
	t.Logf("boot %d: serving %v after QEMU started (resumed or at init %v%s)", n, g.toHTTP.Round(10*time.Millisecond), resumed.Round(10*time.Millisecond), ready)
	return g
}

// checkMount fails the test unless the guest mounted the store with the
// ordinary ext4 semantics a shop PC has: ordered data, barriers (flushes)
// on, no synchronous mount, and a disk with a write-back cache.
func (p *powerCut) checkMount(n int, console string) {
	t := p.t
	m := mountRE.FindStringSubmatch(console)
	e := ext4RE.FindStringSubmatch(console)
	c := cacheRE.FindStringSubmatch(console)
	if m == nil || e == nil || c == nil {
		t.Fatalf("boot %d: the guest did not report its mount\n%s", n, tail(console))
	}
	opts := strings.Split(m[4], ",")
	ext4 := strings.Fields(e[1])
	switch {
	case m[3] != "ext4" || m[2] != "/data":
		t.Fatalf("boot %d: the store is on %s %s, want ext4 on /data", n, m[3], m[2])
	case slices.Contains(opts, "sync") || slices.Contains(opts, "dirsync"):
		t.Fatalf("boot %d: /data is mounted %s: a synchronous mount would hide missing fsyncs", n, m[4])
	case !slices.Contains(ext4, "data=ordered") || !slices.Contains(ext4, "barrier") || slices.Contains(ext4, "nobarrier"):
		t.Fatalf("boot %d: ext4 options %q: want data=ordered and barrier", n, e[1])
	case strings.TrimSpace(c[1]) != "write back":
		t.Fatalf("boot %d: the disk's cache is %q, want \"write back\" (the guest then sends flushes)", n, c[1])
	}
}

// imageCheck is the host's look at the disk after a cut.
type imageCheck struct {
	cut      int
	lost     []string
	problems []string
}

// check reads the store out of a copy of the disk image, as the next boot
// would find it: e2fsck replays ext4's journal, debugfs copies the store
// file out, then bbolt's check runs and every acknowledged receipt is
// looked up, with its exact bytes. wantState, if set, is the delivery state
// each must have.
func (p *powerCut) check(cut int, img string, acked []sent, wantState string) (res imageCheck) {
	res = imageCheck{cut: cut}
	defer os.Remove(img)
	fail := func(format string, args ...any) imageCheck {
		res.problems = append(res.problems, fmt.Sprintf(format, args...))
		return res
	}
	defer func() {
		// bbolt panics on some corrupt pages rather than returning an
		// error; that is a finding, not a crash of the test.
		if v := recover(); v != nil {
			res = fail("reading the store panicked: %v", v)
		}
	}()
	// -fy replays the journal and repairs; exit 0 or 1 (something fixed)
	// is expected, then a second pass must find nothing.
	out, err := exec.Command("e2fsck", "-fy", img).CombinedOutput()
	if code := exitCode(err); code > 1 {
		return fail("e2fsck -fy exit %d:\n%s", code, out)
	}
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		return fail("ext4 not clean after journal replay: e2fsck -fn: %v\n%s", err, out)
	}
	db := img + ".db"
	defer os.Remove(db)
	dump, err := exec.Command("debugfs", "-R", "dump /"+storage.FileName+" "+db, img).CombinedOutput()
	if fi, serr := os.Stat(db); err != nil || serr != nil || fi.Size() == 0 {
		return fail("debugfs dump /%s: %v %v\n%s", storage.FileName, err, serr, dump)
	}
	if err := storage.CheckFile(db); err != nil {
		return fail("storage.CheckFile: %v", err)
	}
	st, err := storage.Open(db, storage.Options{ReadOnly: true})
	if err != nil {
		return fail("open store: %v", err)
	}
	defer st.Close()
	for _, s := range acked {
		r, err := st.Receipt(s.id)
		switch {
		case err != nil:
			res.lost = append(res.lost, s.id)
		case !bytes.Equal(r.Body, s.body):
			res.problems = append(res.problems, fmt.Sprintf("receipt %s: stored bytes differ from those acknowledged", s.id))
		case wantState != "" && r.State != wantState:
			res.problems = append(res.problems, fmt.Sprintf("receipt %s: state %s, want %s", s.id, r.State, wantState))
		}
	}
	return res
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return 255
	}
	return 0
}

// copyImage copies the disk image (sparse, as it is) for a check.
func copyImage(src, dst string) error {
	out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp %s: %v: %s", src, err, out)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

type statusDoc struct {
	Receipts int `json:"receipts"`
	Outbox   int `json:"outbox"`
	Parked   int `json:"parked"`
}

func (p *powerCut) status(admin string) (statusDoc, error) {
	var st statusDoc
	req, _ := http.NewRequest(http.MethodGet, admin+"/admin/api/status", nil)
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	resp, err := p.httpc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: %d %s", resp.StatusCode, b)
	}
	return st, json.Unmarshal(b, &st)
}

// TestPowerCut runs shopbridge in a QEMU guest with its store on ext4 on a
// disk that loses its unflushed writes at a power cut (Disk), and cuts the
// power (SIGKILL of QEMU, then Disk.Cut) while four registers post
// receipts as fast as they can, 30 times, booting the same disk after each
// cut. Odd cuts come at a random moment of the burst; even ones the moment
// a register's second attempt at a receipt is answered before its first
// (or at a random moment if none is). After a cut each register first
// sends again the receipt the cut left unanswered. After every cut the
// host reads the store from the disk: ext4 is clean after its journal
// replay, the store passes bbolt's check and every receipt answered 200 is
// there with its exact bytes. Then the guest boots with the simulator as
// its upstream, and the simulator must receive every acknowledged receipt
// exactly once, byte for byte.
func TestPowerCut(t *testing.T) {
	began := time.Now()
	r := setup(t)
	cuts := 30
	if v := os.Getenv("SHOPBRIDGE_VM_CUTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SHOPBRIDGE_VM_CUTS=%q: want a positive number", v)
		}
		cuts = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SHOPBRIDGE_VM_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SHOPBRIDGE_VM_SEED=%q: want a number", v)
		}
	}
	t.Logf("seed %d (SHOPBRIDGE_VM_SEED repeats the disk's choices and the cut moments)", seed)

	dir := t.TempDir()
	sim := startSim(t, r.shopbridge)
	image := ext4Image(t, dir, 256<<20)
	disk, err := ServeDisk(image, filepath.Join(dir, "nbd.sock"), seed, func(err error) { t.Errorf("disk: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	// A flush takes 5 ms, as on a consumer SSD or faster: long enough
	// that many cuts find writes in the disk's cache, not yet flushed.
	disk.FlushDelay = 5 * time.Millisecond
	p := newPowerCut(t, r, dir, disk, sim, rand.New(rand.NewPCG(seed, 1)))

	bills := demoBills(t)
	l := &ledger{acked: map[string]sent{}}
	regs := make([]*register, 4)
	for i := range regs {
		regs[i] = &register{device: fmt.Sprintf("reg-%d", i+1),
			client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxConnsPerHost: 1}},
			resend: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxConnsPerHost: 1}}}
	}
	var (
		toHTTP, cutToServe []time.Duration
		coldReady          time.Duration
		checks             = make(chan imageCheck, cuts+1)
		checking           sync.WaitGroup
		pendingCopy        string // the image as the last cut left it, copied before the next boot
		pendingAcked       []sent
		pendingCut         int
		lastCut            time.Time
		cutKept, cutLost   int
		dirtyCuts          int // cuts that found unflushed writes in the disk's cache
		earlyCuts          int // cuts right after a resent receipt was answered first
	)
	startCheck := func(cut int, img string, acked []sent, wantState string) {
		checking.Add(1)
		go func() {
			defer checking.Done()
			checks <- p.check(cut, img, acked, wantState)
		}()
	}
	// copyForCheck runs while QEMU starts, before the guest may touch the
	// disk, so the host checks the disk exactly as the cut left it.
	copyForCheck := func() {
		if pendingCopy == "" {
			return
		}
		if err := copyImage(image, pendingCopy); err != nil {
			t.Fatal(err)
		}
		startCheck(pendingCut, pendingCopy, pendingAcked, shopbridge.ReceiptQueued)
		pendingCopy = ""
	}

	for cut := 1; cut <= cuts; cut++ {
		g := p.boot(cut, "-", copyForCheck)
		p.current = g
		toHTTP = append(toHTTP, g.toHTTP)
		if cut == 1 {
			coldReady = g.coldReady
		} else {
			cutToServe = append(cutToServe, time.Since(lastCut))
		}
		for _, reg := range regs {
			reg.client.CloseIdleConnections() // the last ones died with the power
			reg.resend.CloseIdleConnections()
			reg.retryPending(t, g.base, l)
		}
		stop := make(chan struct{})
		early := make(chan string, 1)
		var wg sync.WaitGroup
		for i, reg := range regs {
			wg.Add(1)
			rng := rand.New(rand.NewPCG(seed, uint64(cut*10+i)))
			go func() {
				defer wg.Done()
				reg.run(t, g.base, cut, bills, rng, l, stop, early)
			}()
		}
		burst := time.Duration(100+p.rng.IntN(1400)) * time.Millisecond
		if cut%2 == 0 {
			// Every other cut comes the moment a resent receipt is answered
			// before its first attempt (if that happens in the burst): the
			// receipt must already be durable then.
			select {
			case id := <-early:
				earlyCuts++
				t.Logf("cut %d: right after %s was answered to its second attempt first", cut, id)
			case <-time.After(2 * burst):
			}
		} else {
			time.Sleep(burst)
		}
		lastCut = time.Now()
		disk.PowerOff()
		g.vm.Kill()
		kept, lost, err := disk.Cut()
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if kept+lost > 0 {
			dirtyCuts++
		}
		p.current = nil
		close(stop)
		wg.Wait()
		cutKept += kept
		cutLost += lost
		pendingCut = cut
		pendingCopy = filepath.Join(dir, fmt.Sprintf("after-cut-%02d.img", cut))
		pendingAcked = l.snapshot()
		if t.Failed() {
			break
		}
	}
	copyForCheck() // the last cut, before the drain boot changes the disk
	checking.Wait()
	close(checks)
	survived := 0
	var lostIDs []string
	for c := range checks {
		for _, pr := range c.problems {
			t.Errorf("after cut %d: %s", c.cut, pr)
		}
		if len(c.lost) > 0 {
			t.Errorf("after cut %d: %d acknowledged receipts are not in the store, e.g. %v", c.cut, len(c.lost), c.lost[:min(5, len(c.lost))])
			lostIDs = append(lostIDs, c.lost...)
		}
		if len(c.problems) == 0 && len(c.lost) == 0 {
			survived++
		}
	}
	if n := len(l.snapshot()); n < cuts {
		t.Fatalf("only %d receipts acknowledged over %d cuts: the test did not exercise much", n, cuts)
	}
	stats := disk.Stats()
	if stats.Flushes == 0 {
		t.Fatal("the guest never flushed the disk")
	}
	if t.Failed() {
		t.Logf("disk: %+v", stats)
		return
	}

	// The drain: the upstream is back; every acknowledged receipt must
	// reach it exactly once, byte for byte.
	g := p.boot(cuts+1, "http://"+GuestUpstreamAddr, nil)
	p.current = g
	drainStart := time.Now()
	for _, reg := range regs {
		reg.client.CloseIdleConnections()
		reg.resend.CloseIdleConnections()
		reg.retryPending(t, g.base, l)
	}
	acked := l.snapshot()
	var st statusDoc
	for {
		st, err = p.status(g.admin)
		if err == nil && st.Outbox == 0 && st.Parked == 0 {
			break
		}
		if time.Since(drainStart) > 5*time.Minute {
			t.Fatalf("the outbox did not drain in 5 minutes: %+v %v\n%s", st, err, tail(g.vm.Console()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	arrivals, err := sim.ctl.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string][]crmsim.Receipt{}
	for _, a := range arrivals {
		byID[a.EventID] = append(byID[a.EventID], a)
	}
	ackedByID := map[string]sent{}
	for _, s := range acked {
		ackedByID[s.id] = s
		as := byID[s.id]
		switch {
		case len(as) != 1:
			t.Errorf("receipt %s reached the simulator %d times, want once", s.id, len(as))
		case !as[0].Delivered:
			t.Errorf("receipt %s: the simulator did not answer it 200", s.id)
		case !bytes.Equal(as[0].Body, s.body):
			t.Errorf("receipt %s reached the simulator with other bytes:\n%s\nwant\n%s", s.id, as[0].Body, s.body)
		case as[0].Headers["X-Evotor-Device-Uuid"] != s.device:
			t.Errorf("receipt %s reached the simulator with device %q, want %q", s.id, as[0].Headers["X-Evotor-Device-Uuid"], s.device)
		}
	}
	unacked := 0
	for id, as := range byID {
		if _, ok := ackedByID[id]; ok {
			continue
		}
		if !strings.HasPrefix(id, "pc-") {
			t.Errorf("the simulator received receipt %q, which no register sent", id)
		}
		if len(as) != 1 {
			t.Errorf("receipt %s (stored, never acknowledged) reached the simulator %d times", id, len(as))
		}
		unacked++
	}
	if st.Receipts != len(acked)+unacked {
		t.Errorf("the store holds %d receipts, the simulator received %d acknowledged and %d unacknowledged ones", st.Receipts, len(acked), unacked)
	}
	// Quiet for a moment, so the delivery marks are committed, then one
	// more cut: the store still has every receipt, now delivered.
	time.Sleep(time.Second)
	disk.PowerOff()
	g.vm.Kill()
	if _, _, err := disk.Cut(); err != nil {
		t.Fatal(err)
	}
	p.current = nil
	final := filepath.Join(dir, "after-drain.img")
	if err := copyImage(image, final); err != nil {
		t.Fatal(err)
	}
	if c := p.check(cuts+1, final, acked, shopbridge.ReceiptDelivered); len(c.problems) > 0 || len(c.lost) > 0 {
		t.Errorf("after the drain and a last cut: lost %v, problems %v", c.lost, c.problems)
	}

	stats = disk.Stats()
	summary := fmt.Sprintf("vmtest: power cuts survived %d/%d, acknowledged receipts %d, lost %d; "+
		"drained to the simulator in %v, each once; boot to /healthz median %v max %v; cut to serving median %v max %v; cold boot to init %v; "+
		"disk: %d flushes of %v, %d cuts found unflushed writes in its cache (%d sectors kept, %d lost); %d cuts right after a resent receipt was answered first; accel %s, boot %s; total %v",
		survived, cuts, len(acked), len(lostIDs),
		drained.Round(100*time.Millisecond), median(toHTTP).Round(10*time.Millisecond), slices.Max(toHTTP).Round(10*time.Millisecond),
		median(cutToServe).Round(10*time.Millisecond), maxOr0(cutToServe).Round(10*time.Millisecond), coldReady.Round(100*time.Millisecond),
		stats.Flushes, disk.FlushDelay, dirtyCuts, cutKept, cutLost, earlyCuts, r.accel, r.bootMode, time.Since(began).Round(time.Second))
	t.Log(summary)
	fmt.Println(summary)
}

func maxOr0(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}
