package daemon

import (
	"context"
	"strings"
	"testing"
	"time"
)

func openDaemon(t *testing.T, args ...string) *Daemon {
	t.Helper()
	cfg, err := ParseRunArgs(append([]string{"--config", "/dev/null", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--mdns=false"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	d := New(cfg, nil)
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func check(d *Daemon) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.Check(ctx)
}

// TestCheck runs the watchdog's liveness check against a real daemon: its
// own HTTP server over loopback and its store.
func TestCheck(t *testing.T) {
	d := openDaemon(t)
	if err := check(d); err != nil {
		t.Fatalf("check of a serving daemon: %v", err)
	}
	// The HTTP server gone (its accept loop dead) while the store is fine.
	d.http.Close()
	err := check(d)
	if err == nil || !strings.Contains(err.Error(), "http server") {
		t.Fatalf("check without an HTTP server = %v, want an http server error", err)
	}
}

// TestCheckAllowWithoutLoopback: --allow that leaves out loopback answers
// the check 403, which still shows a working server.
func TestCheckAllowWithoutLoopback(t *testing.T) {
	d := openDaemon(t, "--allow", "10.0.0.0/8")
	if err := check(d); err != nil {
		t.Fatalf("check with loopback not allowed: %v", err)
	}
}

func TestCheckClosed(t *testing.T) {
	d := openDaemon(t)
	d.Close()
	if err := check(d); err == nil {
		t.Fatal("check of a closed daemon passed")
	}
}
