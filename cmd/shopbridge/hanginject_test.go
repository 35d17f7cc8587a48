//go:build !windows

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/testbin"
)

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
		t.Skip("-short: builds the binary with -tags hanginject")
	}
	release := binary // TestMain's build, without tags as a release
	hang, cleanupHang, err := testbin.Build("-tags", "hanginject")
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
		p := startDaemonOf(t, release, t.TempDir())
		p.Cmd.Process.Signal(syscall.SIGUSR2)
		time.Sleep(200 * time.Millisecond) // let a handler, were there one, run
		for i := range 3 {
			if err := postReceipt(p.Base, fmt.Sprint("after-", i), 30*time.Second); err != nil {
				t.Fatalf("receipt after SIGUSR2: %v\n%s", err, p.Logs())
			}
		}
		if strings.Contains(p.Logs(), "hang injected") {
			t.Fatalf("release build logged a hang:\n%s", p.Logs())
		}
	})

	t.Run("hanginject: SIGUSR2 hangs the commit loop", func(t *testing.T) {
		p := startDaemonOf(t, hang, t.TempDir())
		if err := postReceipt(p.Base, "before", 30*time.Second); err != nil {
			t.Fatalf("receipt before the hang: %v", err)
		}
		p.Cmd.Process.Signal(syscall.SIGUSR2)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(p.Logs(), "hang injected") {
			if time.Now().After(deadline) {
				t.Fatalf("no hang logged:\n%s", p.Logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := postReceipt(p.Base, "during", time.Second); err == nil {
			t.Fatal("a receipt was answered while the commit loop hangs")
		}
		resp, err := http.Get(p.Base + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz during the hang: %v %v (reads should still work)", resp, err)
		}
		resp.Body.Close()
		select {
		case <-p.Done():
			t.Fatalf("the test build exited on SIGUSR2:\n%s", p.Logs())
		default:
		}
	})
}
