// Command proc starts the shopbridge daemon and reads what it costs from
// /proc: `proc startup` times exec → first successful GET /healthz and reads
// VmRSS/VmHWM before and after a few terminal requests; `proc idle` measures
// CPU time and wake-ups of an idle daemon; `proc console` times the admin
// console's pages in chromium and its JSON endpoints (console.go); `proc
// freeport` prints a free loopback port.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: proc startup|idle|console|cpu|status|freeport [flags] [-- daemon run flags]")
	}
	switch os.Args[1] {
	case "startup":
		startup(os.Args[2:])
	case "idle":
		idle(os.Args[2:])
	case "console":
		console(os.Args[2:])
	case "cpu":
		cpu(os.Args[2:])
	case "status":
		status(os.Args[2:])
	case "freeport":
		fmt.Println(freePort())
	default:
		log.Fatalf("proc: unknown command %q (want startup, idle, console, cpu, status or freeport)", os.Args[1])
	}
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("proc: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// daemon is one started shopbridge run.
type daemon struct {
	cmd     *exec.Cmd
	base    string
	started time.Time
	ready   time.Duration // exec → first 200 from /healthz
	readyMS chan int      // ready_ms from the listening log line
}

var readyRE = regexp.MustCompile(`msg=listening .*ready_ms=(\d+)`)

func start(bin, data string, extra []string, logTo io.Writer) *daemon {
	port := freePort()
	args := append([]string{"run", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data", data, "--mdns=false"}, extra...)
	d := &daemon{cmd: exec.Command(bin, args...), base: fmt.Sprintf("http://127.0.0.1:%d", port), readyMS: make(chan int, 1)}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Timeout: time.Second}
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		log.Fatalf("proc: start %s: %v", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logTo, sc.Text())
			if m := readyRE.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				d.readyMS <- n
			}
		}
	}()
	deadline := d.started.Add(60 * time.Second)
	for {
		resp, err := client.Get(d.base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				d.ready = time.Since(d.started)
				return d
			}
		}
		if time.Now().After(deadline) {
			d.stop()
			log.Fatalf("proc: %s did not answer /healthz within 60s (last error: %v)", bin, err)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func (d *daemon) logReadyMS() int {
	select {
	case n := <-d.readyMS:
		return n
	case <-time.After(5 * time.Second):
		return -1
	}
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

func (d *daemon) get(path string) ([]byte, int) {
	resp, err := http.Get(d.base + path)
	if err != nil {
		log.Fatalf("proc: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

// memKiB reads the memory lines of /proc/PID/status in KiB.
func memKiB(pid int) map[string]int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatalf("proc: %v", err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads":
			f := strings.Fields(v)
			if len(f) > 0 {
				out[k], _ = strconv.Atoi(f[0])
			}
		}
	}
	return out
}

func mib(kib int) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func startup(args []string) {
	fs := flag.NewFlagSet("startup", flag.ExitOnError)
	bin := fs.String("bin", "bin/shopbridge", "daemon binary")
	data := fs.String("data", "", "data directory with the store")
	n := fs.Int("n", 3, "starts")
	ids := fs.String("ids", "", "comma-separated bill ids to fetch after start (besides those of the list)")
	logFile := fs.String("log", "", "append the daemon's stderr here")
	fs.Parse(args)
	logTo, closeLog := openLog(*logFile)
	defer closeLog()
	var ready, logReady, rss0, hwm0, rss1, hwm1, rss2, hwm2 []float64
	for i := 0; i < *n; i++ {
		d := start(*bin, *data, fs.Args(), logTo)
		pid := d.cmd.Process.Pid
		lr := d.logReadyMS()
		m0 := memKiB(pid)
		// A few terminal requests, as a register would make after start.
		paths := []string{"/api/v2/hello", "/api/v2/list", "/api/v2/list?date=today"}
		body, _ := d.get("/api/v2/list")
		var sums []struct {
			ID     json.Number `json:"id"`
			Number string      `json:"number"`
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		dec.Decode(&sums)
		for k, s := range sums {
			if k >= 10 {
				break
			}
			paths = append(paths, "/api/v2/bill/byid/"+s.ID.String(), "/api/v2/list?number="+s.Number)
		}
		for _, id := range strings.Split(*ids, ",") {
			if id != "" {
				paths = append(paths, "/api/v2/bill/byid/"+id)
			}
		}
		bad := 0
		for _, p := range paths {
			if _, code := d.get(p); code != 200 {
				bad++
			}
		}
		time.Sleep(200 * time.Millisecond) // let the journal writer commit them
		m1 := memKiB(pid)
		t := time.Now()
		d.get("/admin/api/status")
		statusMS := float64(time.Since(t).Microseconds()) / 1000
		m2 := memKiB(pid)
		d.stop()
		fmt.Printf("run %d: ready %.1f ms (log ready_ms %d); at ready RSS %s MiB (anon %s, file %s) HWM %s; after %d requests (%d not 200) RSS %s MiB (anon %s, file %s) HWM %s; after /admin/api/status (%.0f ms) RSS %s MiB HWM %s; threads %d\n",
			i+1, float64(d.ready.Microseconds())/1000, lr, mib(m0["VmRSS"]), mib(m0["RssAnon"]), mib(m0["RssFile"]), mib(m0["VmHWM"]),
			len(paths), bad, mib(m1["VmRSS"]), mib(m1["RssAnon"]), mib(m1["RssFile"]), mib(m1["VmHWM"]), statusMS, mib(m2["VmRSS"]), mib(m2["VmHWM"]), m1["Threads"])
		ready = append(ready, float64(d.ready.Microseconds())/1000)
		logReady = append(logReady, float64(lr))
		rss0, hwm0 = append(rss0, float64(m0["VmRSS"])), append(hwm0, float64(m0["VmHWM"]))
		rss1, hwm1 = append(rss1, float64(m1["VmRSS"])), append(hwm1, float64(m1["VmHWM"]))
		rss2, hwm2 = append(rss2, float64(m2["VmRSS"])), append(hwm2, float64(m2["VmHWM"]))
	}
	fmt.Printf("RESULT ready_ms=%.1f log_ready_ms=%.0f rss_start_mib=%.1f hwm_start_mib=%.1f rss_after_mib=%.1f hwm_after_mib=%.1f rss_status_mib=%.1f hwm_status_mib=%.1f\n",
		median(ready), median(logReady), median(rss0)/1024, median(hwm0)/1024, median(rss1)/1024, median(hwm1)/1024, median(rss2)/1024, median(hwm2)/1024)
}

// sample is the process's CPU time and context switches at one moment.
type sample struct {
	at       time.Time
	ticks    int64 // utime+stime, USER_HZ
	runNS    int64 // sum of /proc/PID/task/*/schedstat on-CPU time
	switches int64 // voluntary+nonvoluntary over all threads
	threads  int
}

// userHZ is the unit of /proc/PID/stat times: USER_HZ is 100 on Linux
// whatever the kernel's tick rate.
const userHZ = 100

func take(pid int) sample {
	s := sample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		log.Fatalf("proc: %v", err)
	}
	// Fields after the command name (which may hold spaces) start at state.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.ticks = ut + st
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	s.threads = len(tasks)
	for _, t := range tasks {
		if sb, err := os.ReadFile(t + "/schedstat"); err == nil {
			if f := strings.Fields(string(sb)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				s.runNS += n
			}
		}
		sb, err := os.ReadFile(t + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(sb), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				s.switches += n
			}
		}
	}
	return s
}

func idle(args []string) {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	bin := fs.String("bin", "bin/shopbridge", "daemon binary")
	data := fs.String("data", "", "data directory")
	settle := fs.Duration("settle", 5*time.Second, "wait after start before measuring")
	dur := fs.Duration("d", 60*time.Second, "how long to measure")
	logFile := fs.String("log", "", "append the daemon's stderr here")
	fs.Parse(args)
	logTo, closeLog := openLog(*logFile)
	defer closeLog()
	d := start(*bin, *data, fs.Args(), logTo)
	defer d.stop()
	pid := d.cmd.Process.Pid
	time.Sleep(*settle)
	a := take(pid)
	time.Sleep(*dur)
	b := take(pid)
	el := b.at.Sub(a.at).Seconds()
	cpuTicks := float64(b.ticks-a.ticks) / userHZ / el * 100
	cpuSched := float64(b.runNS-a.runNS) / 1e9 / el * 100
	wake := float64(b.switches-a.switches) / el
	fmt.Printf("RESULT seconds=%.1f cpu_pct_stat=%.3f cpu_pct_schedstat=%.4f cpu_ms=%.1f wakeups_per_s=%.2f switches=%d threads=%d rss_mib=%.1f\n",
		el, cpuTicks, cpuSched, float64(b.runNS-a.runNS)/1e6, wake, b.switches-a.switches, b.threads, float64(memKiB(pid)["VmRSS"])/1024)
}

// status prints the journal writer's and the store's counters of a running
// daemon (proc status BASE-URL).
func status(args []string) {
	if len(args) != 1 {
		log.Fatal("usage: proc status http://ADDR")
	}
	resp, err := http.Get(args[0] + "/admin/api/status")
	if err != nil {
		log.Fatalf("proc: status: %v", err)
	}
	defer resp.Body.Close()
	var st struct {
		Journal struct {
			Written, Dropped uint64
			Queued           int
		} `json:"journal"`
		Store struct {
			Commits uint64 `json:"commits"`
		} `json:"store"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		log.Fatalf("proc: status: %v", err)
	}
	fmt.Printf("journal written=%d dropped=%d queued=%d; store commits=%d\n",
		st.Journal.Written, st.Journal.Dropped, st.Journal.Queued, st.Store.Commits)
}

// cpu prints the CPU time (utime+stime, ms) of the given processes and their
// direct children (nginx's workers), for CPU per request.
func cpu(args []string) {
	if len(args) == 0 {
		log.Fatal("usage: proc cpu PID...")
	}
	want := map[string]bool{}
	for _, a := range args {
		want[a] = true
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pid := filepath.Base(filepath.Dir(path))
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) < 13 || !(want[pid] || want[f[1]]) {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	fmt.Println(ticks * 1000 / userHZ)
}

// openLog opens path for appending the daemon's stderr; "" discards it.
func openLog(path string) (io.Writer, func()) {
	if path == "" {
		return io.Discard, func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	return f, func() { f.Close() }
}
