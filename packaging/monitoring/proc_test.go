package monitoring_test

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	listenRE = regexp.MustCompile(`msg=listening addr=(\S+)`)
	simRE    = regexp.MustCompile(`^crmsim api=(\S+) `)
	simCtlRE = regexp.MustCompile(`^crmsim api=\S+ control=(\S+) `)
)

// proc is a process a test started (the daemon, the simulator,
// Prometheus), its output kept for the failure message.
type proc struct {
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	done  bool
}

// startProc runs prefix + name + args (prefix: e.g. ip netns exec NS),
// killed with SIGKILL on cleanup.
func startProc(t *testing.T, prefix []string, name string, args ...string) *proc {
	t.Helper()
	all := append(append(append([]string{}, prefix...), name), args...)
	label := filepath.Base(name)
	if len(args) > 0 {
		label += " " + args[0]
	}
	p := &proc{name: label, cmd: exec.Command(all[0], all[1:]...)}
	p.cond = sync.NewCond(&p.mu)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(all, " "), err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.cond.Broadcast()
			p.mu.Unlock()
		}
	}()
	exited := make(chan struct{})
	go func() {
		p.cmd.Wait()
		pw.Close()
		p.mu.Lock()
		p.done = true
		p.cond.Broadcast()
		p.mu.Unlock()
		close(exited)
	}()
	t.Cleanup(func() {
		p.kill()
		<-exited
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.output())
		}
	})
	return p
}

// kill sends SIGKILL (the process, not a group: the prefix execs it).
func (p *proc) kill() { p.cmd.Process.Signal(syscall.SIGKILL) }

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLine waits for a line matching re and returns its first group. The
// limit only ends a test whose process never says it (a hang), so it is
// generous.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp, limit time.Duration) string {
	t.Helper()
	timer := time.AfterFunc(limit, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(limit)
	p.mu.Lock()
	for i := 0; ; {
		for ; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i]); m != nil {
				p.mu.Unlock()
				return m[1]
			}
		}
		if p.done || time.Now().After(deadline) {
			out, done := strings.Join(p.lines, "\n"), p.done
			p.mu.Unlock()
			t.Fatalf("%s: no line matching %s (exited: %v):\n%s", p.name, re, done, out)
		}
		p.cond.Wait()
	}
}
