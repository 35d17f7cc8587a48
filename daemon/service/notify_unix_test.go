//go:build !windows

package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifySocket listens where systemd would ($NOTIFY_SOCKET) and returns
// the socket the test reads the daemon's messages from.
func notifySocket(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

// next reads the next message, waiting at most d.
func next(t *testing.T, c *net.UnixConn, d time.Duration) (string, bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n]), true
}

func TestSdNotify(t *testing.T) {
	for _, tc := range []struct{ name, socket string }{
		{"socket file", filepath.Join(t.TempDir(), "notify")},
		// systemd in a container or a user manager may pass an abstract
		// socket; Go maps the '@' to the leading NUL byte.
		{"abstract", fmt.Sprintf("@shopbridge-test-%d-%d", os.Getpid(), time.Now().UnixNano())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := notifySocket(t, tc.socket)
			if err := sdNotify("READY=1\nSTATUS=serving"); err != nil {
				t.Fatal(err)
			}
			if got, ok := next(t, c, 5*time.Second); got != "READY=1\nSTATUS=serving" {
				t.Fatalf("got %q (received: %v)", got, ok)
			}
		})
	}
}

func TestSdNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v", err)
	}
}

func TestSdNotifyErrors(t *testing.T) {
	for _, tc := range []struct{ name, socket, want string }{
		{"vsock", "vsock:2:1234", `NOTIFY_SOCKET="vsock:2:1234": want a socket path`},
		{"relative", "notify", `NOTIFY_SOCKET="notify"`},
		{"nobody listens", filepath.Join(t.TempDir(), "gone"), "notify systemd:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tc.socket)
			err := sdNotify("READY=1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestWatchdogTimeout(t *testing.T) {
	self := fmt.Sprint(os.Getpid())
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
		err             string
	}{
		{name: "off", want: 0},
		{name: "30s", usec: "30000000", want: 30 * time.Second},
		{name: "for this process", usec: "30000000", pid: self, want: 30 * time.Second},
		{name: "for another process", usec: "30000000", pid: "1", want: 0},
		{name: "not a number", usec: "30s", err: `WATCHDOG_USEC="30s"`},
		{name: "zero", usec: "0", err: `WATCHDOG_USEC="0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			got, err := watchdogTimeout()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// checked is a program whose liveness the test decides, one check at a
// time: each Check waits for the test's answer.
type checked struct {
	program
	calls   chan struct{}
	answers chan error
}

func (p *checked) Check(ctx context.Context) error {
	select {
	case p.calls <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.answers:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestAdapterWatchdog drives the adapter as systemd would: READY=1 after
// Open, WATCHDOG=1 after each passing check and none after a failing one,
// STOPPING=1 on Stop.
func TestAdapterWatchdog(t *testing.T) {
	c := notifySocket(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv("WATCHDOG_USEC", "300000")
	t.Setenv("WATCHDOG_PID", "")
	p := &checked{program: program{done: make(chan error, 1)}, calls: make(chan struct{}), answers: make(chan error)}
	// No check times out while the test answers it, however slow the machine.
	a := &adapter{p: p, exit: func(int) { t.Error("exit called") }, checkTimeout: time.Hour}
	if err := a.Start(nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := next(t, c, 5*time.Second); got != "READY=1" {
		t.Fatalf("first message %q, want READY=1", got)
	}
	answer := func(err error) {
		t.Helper()
		select {
		case <-p.calls:
		case <-time.After(30 * time.Second):
			t.Fatal("the watchdog loop never checked")
		}
		p.answers <- err
	}
	answer(nil)
	if got, _ := next(t, c, 30*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after a passing check: %q, want WATCHDOG=1", got)
	}
	answer(errors.New("store: no answer within 5s"))
	answer(errors.New("store: no answer within 5s"))
	// The loop decided about the first failure before it began the
	// second check, so a ping after it would be in the socket by now.
	if got, ok := next(t, c, 100*time.Millisecond); ok {
		t.Fatalf("after a failing check: %q, want nothing", got)
	}
	answer(nil)
	if got, _ := next(t, c, 30*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after the check passes again: %q, want WATCHDOG=1", got)
	}
	if err := a.Stop(nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := next(t, c, 5*time.Second); got != "STOPPING=1" {
		t.Fatalf("on stop: %q, want STOPPING=1", got)
	}
	if p.closed != 1 {
		t.Fatalf("closed %d times", p.closed)
	}
}

// TestAdapterNoWatchdog: without WATCHDOG_USEC the program is never checked.
func TestAdapterNoWatchdog(t *testing.T) {
	c := notifySocket(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv("WATCHDOG_USEC", "")
	p := &checked{program: program{done: make(chan error, 1)}, calls: make(chan struct{}), answers: make(chan error)}
	a := &adapter{p: p}
	if err := a.Start(nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := next(t, c, 5*time.Second); got != "READY=1" {
		t.Fatalf("first message %q, want READY=1", got)
	}
	if err := a.Stop(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.calls:
		t.Fatal("checked without a watchdog")
	default:
	}
}
