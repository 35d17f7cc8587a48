//go:build !windows

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/testbin"
)

// daemonProc is a running "shopbridge run" on 127.0.0.1:0.
type daemonProc struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	exited chan error
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

func startBinary(t *testing.T, bin string) *daemonProc {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", "/dev/null", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--mdns=false")
	p := &daemonProc{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.stderr.WriteLine(sc.Text())
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start:\n%s", bin, p.stderr)
	}
	return p
}

// syncBuffer is the daemon's stderr, written by the reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteLine(s string) { b.mu.Lock(); b.buf.WriteString(s + "\n"); b.mu.Unlock() }
func (b *syncBuffer) String() string     { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

func postReceipt(base, id string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Post(base+"/api/v2/receipts", "application/json",
		strings.NewReader(`{"id":"`+id+`","data":{"type":"SELL","extras":{}}}`))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return errors.New(resp.Status)
	}
	return nil
}

// TestHangInjectionOnlyInTestBuilds proves the hang the systemd guest test
// injects exists in a -tags hanginject build only: a build as released has
// neither the code nor the signal handler, and SIGUSR2
// (which Go ignores then) changes nothing, while the test build's commit
// loop hangs on it.
func TestHangInjectionOnlyInTestBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary twice")
	}
	release, cleanup, err := testbin.Build("-trimpath", "-ldflags", "-s -w")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	hang, cleanupHang, err := testbin.Build("-trimpath", "-ldflags", "-s -w", "-tags", "hanginject")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanupHang()

	marker := []byte("hang injected")
	for _, c := range []struct {
		name, bin string
		want      bool
	}{{"release", release, false}, {"hanginject", hang, true}} {
		out, err := exec.Command("go", "version", "-m", c.bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(out), "-tags=hanginject"); got != c.want {
			t.Errorf("%s build: go version -m lists -tags=hanginject: %v, want %v", c.name, got, c.want)
		}
		exe, err := os.ReadFile(c.bin)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(exe, marker); got != c.want {
			t.Errorf("%s build contains %q: %v, want %v", c.name, marker, got, c.want)
		}
		ver, err := exec.Command(c.bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(ver), "TEST BUILD"); got != c.want {
			t.Errorf("%s build: version says TEST BUILD: %v, want %v:\n%s", c.name, got, c.want, ver)
		}
	}

	// Go ignores SIGUSR2 when nothing asks for it: the release build
	// goes on committing.
	t.Run("release: SIGUSR2 changes nothing", func(t *testing.T) {
		p := startBinary(t, release)
		p.cmd.Process.Signal(syscall.SIGUSR2)
		time.Sleep(200 * time.Millisecond) // let a handler, were there one, run
		for i := range 3 {
			if err := postReceipt(p.base, fmt.Sprint("after-", i), 30*time.Second); err != nil {
				t.Fatalf("receipt after SIGUSR2: %v\n%s", err, p.stderr)
			}
		}
		if strings.Contains(p.stderr.String(), "hang injected") {
			t.Fatalf("release build logged a hang:\n%s", p.stderr)
		}
	})

	t.Run("hanginject: SIGUSR2 hangs the commit loop", func(t *testing.T) {
		p := startBinary(t, hang)
		if err := postReceipt(p.base, "before", 30*time.Second); err != nil {
			t.Fatalf("receipt before the hang: %v", err)
		}
		p.cmd.Process.Signal(syscall.SIGUSR2)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(p.stderr.String(), "hang injected") {
			if time.Now().After(deadline) {
				t.Fatalf("no hang logged:\n%s", p.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := postReceipt(p.base, "during", time.Second); err == nil {
			t.Fatal("a receipt was answered while the commit loop hangs")
		}
		resp, err := http.Get(p.base + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz during the hang: %v %v (reads should still work)", resp, err)
		}
		resp.Body.Close()
		select {
		case err := <-p.exited:
			t.Fatalf("the test build exited on SIGUSR2: %v", err)
		default:
		}
	})
}
