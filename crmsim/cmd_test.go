package crmsim_test

import (
	"bufio"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
)

// buildShopbridge builds the real binary once per test run.
func buildShopbridge(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs the shopbridge binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go tool on PATH to build shopbridge")
	}
	bin := filepath.Join(t.TempDir(), "shopbridge")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/shopbridge/shopbridge/cmd/shopbridge").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCommand runs "shopbridge crmsim" as a real process: bad flags exit 2
// with one line naming the flag; a good run prints both bound addresses,
// serves, and exits 0 on SIGTERM.
func TestCommand(t *testing.T) {
	bin := buildShopbridge(t)
	bad := []struct {
		args []string
		flag string
	}{
		{[]string{"--latency", "soon"}, "latency"},
		{[]string{"--bills", "-1"}, "bills"},
		{[]string{"--max-concurrent", "-1"}, "max-concurrent"},
		{[]string{"--max-concurrent", "many"}, "max-concurrent"},
		{[]string{"--timezone", "Mars/Base"}, "timezone"},
		{[]string{"--data", filepath.Join(t.TempDir(), "missing.json")}, "data"},
		{[]string{"--bogus"}, "bogus"},
		{[]string{"--bills", "3", "--data", "x.json"}, "bills"},
	}
	for _, tt := range bad {
		cmd := exec.Command(bin, append([]string{"crmsim"}, tt.args...)...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit 2", tt.args, err)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], tt.flag) {
			t.Errorf("%v: output %q, want one line naming %s", tt.args, out, tt.flag)
		}
	}

	cmd := exec.Command(bin, "crmsim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--bills", "50", "--timezone", "UTC",
		"--max-concurrent", "3")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("start line: %v", err)
	}
	m := regexp.MustCompile(`^crmsim api=(http://127\.0\.0\.1:\d+) control=(http://127\.0\.0\.1:\d+) bills=50\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("start line %q", line)
	}
	if st, b := get(t, m[1]+"/api/v2/list"); st != 200 || len(ids(t, b)) != 50 {
		t.Fatalf("list = %d %.200s", st, b)
	}
	ctl := &crmsim.Control{URL: m[2]}
	if s, err := ctl.State(); err != nil || s.Bills != 50 || s.MaxConcurrent != 3 {
		t.Fatalf("state = %+v, %v", s, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
}
