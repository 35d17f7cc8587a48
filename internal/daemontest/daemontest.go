// Package daemontest runs the shopbridge binary (built by internal/testbin)
// as a separate process for end-to-end tests: a daemon on 127.0.0.1:0 with
// mDNS off, or any other command of it (the simulator). It exists so that
// the daemon, sync and cmd/shopbridge suites start it one way. internal/
// because only the module's own tests use it.
package daemontest

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartLimit bounds how long a process may take to say it is ready, and
// to stop on SIGTERM: generous, for -race on a loaded machine.
const StartLimit = 30 * time.Second

// Process is a running process of the binary and what it printed.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs bytes.Buffer
}

// StartProcess runs binary with args, env added to this process's
// environment, and returns once a line of its output (stdout and stderr,
// kept for Logs) matches ready, with that match. It fails tb when the
// process exits first or says nothing within StartLimit. The process is
// killed when the test ends.
func StartProcess(tb testing.TB, binary string, env []string, ready *regexp.Regexp, args ...string) (*Process, []string) {
	tb.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	// Wait returns once the process has exited and all it wrote is in
	// the pipe; done closes once the reader has kept it all, so that Logs
	// after Done (or Stop) holds the last lines.
	go func() { cmd.Wait(); pw.Close() }()
	found := make(chan []string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr) // a line over the buffer: keep the pipe flowing
	}()
	tb.Cleanup(p.Kill)
	select {
	case m := <-found:
		return p, m
	case <-p.done:
		tb.Fatalf("%s %s exited at start (%v):\n%s", filepath.Base(binary), args[0], cmd.ProcessState, p.Logs())
	case <-time.After(StartLimit):
		tb.Fatalf("%s %s did not start within %v:\n%s", filepath.Base(binary), args[0], StartLimit, p.Logs())
	}
	return nil, nil
}

// Logs is what the process printed so far.
func (p *Process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Done is closed once the process has exited (Cmd.ProcessState is set)
// and Logs holds all it printed.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for the process to exit; it fails tb when
// the process does not exit within StartLimit or exits with a status
// other than 0.
func (p *Process) Stop(tb testing.TB) {
	tb.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StartLimit):
		tb.Fatalf("process did not stop on SIGTERM within %v:\n%s", StartLimit, p.Logs())
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		tb.Fatalf("process exited with %v on SIGTERM:\n%s", p.Cmd.ProcessState, p.Logs())
	}
}

// Daemon is a running shopbridge run.
type Daemon struct {
	*Process
	Base string // http://127.0.0.1:port
	Data string // its --data
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// Start runs `binary run` on 127.0.0.1:0 with data as its data directory
// mDNS off and an empty config file of its own (not
// this machine's), env added to the environment, and waits until it
// listens. args come after the defaults, so they win.
func Start(tb testing.TB, binary, data string, env []string, args ...string) *Daemon {
	tb.Helper()
	conf := filepath.Join(tb.TempDir(), "empty.toml")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	all := append([]string{"run", "--listen", "127.0.0.1:0", "--data", data, "--mdns=false", "--config", conf}, args...)
	p, m := StartProcess(tb, binary, env, listening, all...)
	return &Daemon{Process: p, Base: "http://" + m[1], Data: data}
}
