package discovery

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Helpers for tests that build their own little LANs out of network
// namespaces and veth pairs. Every interface is created inside a namespace
// the test owns (never in the host's), and everything is deleted on cleanup.

var nsSeq atomic.Int32

// needNetns skips unless we are root with the ip tool.
func needNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("netns test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces and veth pairs (CI runs it as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: the ip tool (iproute2) is not installed")
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

type netns struct{ name string }

// newNS creates a namespace with loopback up, deleted on cleanup.
func newNS(t *testing.T, role string) *netns {
	t.Helper()
	name := fmt.Sprintf("sbdisc-%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		// Deleting the namespace also deletes the veth ends inside it.
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("cleanup: ip netns del %s: %v %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return &netns{name: name}
}

// link connects a (interface aif) and b (interface bif) with a veth pair
// created directly inside a, its peer directly inside b, both up with
// multicast on.
func link(t *testing.T, a *netns, aif string, b *netns, bif string) {
	t.Helper()
	run(t, "ip", "-n", a.name, "link", "add", aif, "type", "veth", "peer", "name", bif, "netns", b.name)
	run(t, "ip", "-n", a.name, "link", "set", aif, "multicast", "on", "up")
	run(t, "ip", "-n", b.name, "link", "set", bif, "multicast", "on", "up")
}

func (n *netns) addr(t *testing.T, dev, cidr string) {
	t.Helper()
	run(t, "ip", "-n", n.name, "addr", "add", cidr, "dev", dev)
}

// bridge makes n a switch: a bridge br0 without multicast snooping, so
// mDNS floods every port like on a cheap shop switch.
func (n *netns) bridge(t *testing.T) {
	t.Helper()
	run(t, "ip", "-n", n.name, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	run(t, "ip", "-n", n.name, "link", "set", "br0", "up")
}

// plug connects host's interface dev to switch sw's bridge.
func plug(t *testing.T, host *netns, dev string, sw *netns) {
	t.Helper()
	port := fmt.Sprintf("p%d", nsSeq.Add(1))
	link(t, host, dev, sw, port)
	run(t, "ip", "-n", sw.name, "link", "set", port, "master", "br0")
}

// proc is a role process running inside a namespace.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
	done  bool
	exit  chan struct{}
}

// start runs a role of this test binary (or any command, if args are given
// after "--") inside n.
func (n *netns) start(t *testing.T, role string, env ...string) *proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return n.startCmd(t, append([]string{roleEnv + "=" + role}, env...), self, "-test.run=^$")
}

func (n *netns) startCmd(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	p := &proc{t: t, cmd: cmd, exit: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, n.name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		cmd.Wait()
		p.mu.Lock()
		p.done = true
		p.cond.Broadcast()
		p.mu.Unlock()
		close(p.exit)
	}()
	t.Cleanup(func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		<-p.exit
		if t.Failed() {
			p.mu.Lock()
			lines := p.lines
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			p.mu.Unlock()
			t.Logf("%s %v\nstdout (last lines):\n%s\nstderr:\n%s", n.name, args[len(args)-1], strings.Join(lines, "\n"), stderr.String())
		}
	})
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// waitLine waits until a line satisfies ok (searching from line index from),
// returning it and its index; it fails the test after timeout or if the
// process ends first.
func (p *proc) waitLine(from int, timeout time.Duration, what string, ok func(string) bool) (string, int) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := from; ; {
		for ; i < len(p.lines); i++ {
			if ok(p.lines[i]) {
				return p.lines[i], i
			}
		}
		if p.done || time.Now().After(deadline) {
			p.t.Fatalf("waiting %v for %s: not seen (exited=%v); output:\n%s", timeout, what, p.done, strings.Join(p.lines, "\n"))
		}
		p.cond.Wait()
	}
}

func (p *proc) signal(sig syscall.Signal) {
	// ip netns exec execs the command, so the pid is the role's own.
	p.cmd.Process.Signal(sig)
}

func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exit:
	case <-time.After(timeout):
		t.Fatalf("process did not exit within %v", timeout)
	}
}

// waitStatus waits for an announcer STATUS line that satisfies ok.
func (p *proc) waitStatus(from int, timeout time.Duration, what string, ok func(Status) bool) (Status, int) {
	p.t.Helper()
	var st Status
	_, i := p.waitLine(from, timeout, what, func(l string) bool {
		rest, found := strings.CutPrefix(l, "STATUS ")
		if !found {
			return false
		}
		var s Status
		if json.Unmarshal([]byte(rest), &s) != nil || !ok(s) {
			return false
		}
		st = s
		return true
	})
	return st, i
}

// browse runs one register browse in n and returns what it found.
func (n *netns) browse(t *testing.T, timeout time.Duration, flow bool) ([]Instance, []string) {
	t.Helper()
	env := []string{"BROWSE_TIMEOUT=" + timeout.String()}
	if flow {
		env = append(env, "REGISTER_FLOW=1")
	}
	p := n.start(t, "register", env...)
	line, _ := p.waitLine(0, timeout+15*time.Second, "FOUND line", func(l string) bool { return strings.HasPrefix(l, "FOUND ") })
	var found []Instance
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "FOUND ")), &found); err != nil {
		t.Fatalf("FOUND line: %v", err)
	}
	p.wait(t, 15*time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	var flows []string
	for _, l := range p.lines {
		if strings.HasPrefix(l, "FLOW ") {
			flows = append(flows, l)
		}
	}
	return found, flows
}

// browseUntil repeats short browses until ok holds, up to timeout.
func (n *netns) browseUntil(t *testing.T, timeout time.Duration, what string, ok func([]Instance) bool) []Instance {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []Instance
	for time.Now().Before(deadline) {
		found, _ := n.browse(t, 500*time.Millisecond, false)
		if ok(found) {
			return found
		}
		last = found
	}
	t.Fatalf("within %v no browse saw %s; last: %+v", timeout, what, last)
	return nil
}

func ipStrings(in Instance) []string {
	var s []string
	for _, ip := range in.Addrs {
		s = append(s, ip.String())
	}
	return s
}

func hasIP(in Instance, ip string) bool {
	for _, a := range in.Addrs {
		if a.String() == ip {
			return true
		}
	}
	return false
}

func v4s(in Instance) []string {
	var s []string
	for _, ip := range in.Addrs {
		if ip.To4() != nil {
			s = append(s, ip.String())
		}
	}
	return s
}
