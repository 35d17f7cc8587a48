package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testConfig is the Config of `shopbridge run --config /dev/null --listen
// 127.0.0.1:0 --data data --mdns=false` (cmd/shopbridge parses it), with
// each of set applied.
func testConfig(data string, set ...func(*Config)) Config {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	c := Config{ConfigFile: "/dev/null", ConfigRead: true, Listen: "127.0.0.1:0", HTTPSListen: "127.0.0.1:0", DataDir: data,
		SyncInterval: 10 * time.Second, PushInFlight: 64, Timezone: time.Local, Name: "shopbridge on " + host,
		JournalMaxAge: 720 * time.Hour, JournalMaxSize: 256 << 20, LogLevel: "info",
		BackupDir: filepath.Join(data, "backups"), BackupEvery: 24 * time.Hour, BackupKeep: 7}
	for _, f := range set {
		f(&c)
	}
	return c
}

func openDaemon(t *testing.T, set ...func(*Config)) *Daemon {
	t.Helper()
	d := New(testConfig(t.TempDir(), set...), nil)
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
	d.server.Close()
	err := check(d)
	if err == nil || !strings.Contains(err.Error(), "http server") {
		t.Fatalf("check without an HTTP server = %v, want an http server error", err)
	}
}

// TestCheckAllowWithoutLoopback: --allow that leaves out loopback answers
// the check 403, which still shows a working server.
func TestCheckAllowWithoutLoopback(t *testing.T) {
	d := openDaemon(t, func(c *Config) { c.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
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
