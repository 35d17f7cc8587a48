package discovery

import (
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/internal/testbin"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// shopbridgeBinary builds the real daemon once per test run.
func shopbridgeBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipped: the go tool is needed to build bin/shopbridge for the end-to-end test")
	}
	buildOnce.Do(func() { binPath, _, buildErr = testbin.Build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestNetnsDaemonEndToEnd runs the real `shopbridge run` in one namespace
// and a register in another: the register finds it with no address
// configured and walks hello → list → bill → receipt against the
// discovered address; admin/api/status shows the announcement; SIGTERM ends
// it cleanly with a goodbye.
func TestNetnsDaemonEndToEnd(t *testing.T) {
	needNetns(t)
	bin := shopbridgeBinary(t)
	t.Parallel()
	d, r := newNS(t, "d"), newNS(t, "r")
	link(t, d, "eth0", r, "eth0")
	d.addr(t, "eth0", "10.77.1.1/24")
	r.addr(t, "eth0", "10.77.1.2/24")

	data := t.TempDir()
	start := time.Now()
	daemon := d.startCmd(t, nil, "sh", "-c", "exec "+bin+` run --listen :8480 --data `+data+` --demo --mdns=true --name "shopbridge e2e" 2>&1`)
	daemon.waitLine(0, 15*time.Second, "the daemon listening", func(l string) bool { return strings.Contains(l, "msg=listening") })
	found := r.browseUntil(t, 15*time.Second, "the real daemon", func(f []Instance) bool { return len(f) == 1 && f[0].URL != "" })
	t.Logf("MEASURE real daemon start → first successful browse+hello: %v", time.Since(start).Round(10*time.Millisecond))
	in := found[0]
	if in.Name != "shopbridge e2e" || in.Port != 8480 || in.URL != "http://10.77.1.1:8480/api/v2" || in.Protocol != "0.1.0" {
		t.Errorf("found %+v", in)
	}
	_, flows := r.browse(t, 2*time.Second, true)
	if len(flows) != 1 || !strings.HasPrefix(flows[0], "FLOW ok") {
		t.Fatalf("register flow against the real daemon: %v", flows)
	}

	// The installer's tool, from the register's side of the LAN.
	disc := r.startCmd(t, nil, bin, "discover", "--timeout", "2s", "--json")
	disc.wait(t, 20*time.Second)
	disc.mu.Lock()
	out := strings.Join(disc.lines, "\n")
	disc.mu.Unlock()
	var listed []Instance
	if err := json.Unmarshal([]byte(out), &listed); err != nil || disc.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("shopbridge discover --json: exit %d, %v:\n%s", disc.cmd.ProcessState.ExitCode(), err, out)
	}
	if len(listed) != 1 || listed[0].Name != "shopbridge e2e" || listed[0].System == "" || listed[0].URL != in.URL {
		t.Errorf("shopbridge discover listed %+v", listed)
	}
	table := r.startCmd(t, nil, bin, "discover", "--timeout", "1s")
	table.wait(t, 20*time.Second)
	table.mu.Lock()
	out = strings.Join(table.lines, "\n")
	table.mu.Unlock()
	if !strings.Contains(out, "shopbridge e2e") || !strings.Contains(out, "ok http://10.77.1.1:8480/api/v2") {
		t.Errorf("shopbridge discover table:\n%s", out)
	}

	get := d.start(t, "get", "GET_URL=http://127.0.0.1:8480/admin/api/status")
	line, _ := get.waitLine(0, 10*time.Second, "status body", func(l string) bool { return strings.HasPrefix(l, "BODY ") })
	var st struct {
		InstanceID string                  `json:"instance_id"`
		MDNS       Status                  `json:"mdns"`
		HTTPS      *shopbridge.HTTPSStatus `json:"https"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "BODY ")), &st); err != nil {
		t.Fatalf("admin/api/status: %v: %s", err, line)
	}
	if st.MDNS.State != "announcing" || st.MDNS.Instance != "shopbridge e2e" || st.MDNS.Port != 8480 ||
		st.MDNS.Host != hostLabel(st.InstanceID)+".local." || len(st.MDNS.Interfaces) != 1 || st.MDNS.Interfaces[0].Name != "eth0" {
		t.Errorf("admin/api/status mdns = %+v (instance_id %q)", st.MDNS, st.InstanceID)
	}
	if in.TXT["id"] != st.InstanceID {
		t.Errorf("TXT id = %q, status instance_id = %q", in.TXT["id"], st.InstanceID)
	}

	// HTTPS: the register pins the fingerprint the TXT record published,
	// which is the status's; the console over plain HTTP from its side of
	// the LAN is sent there.
	pin := in.TXT["tls_sha256"]
	if st.HTTPS == nil || pin == "" || pin != st.HTTPS.Fingerprint || in.TXT["https_port"] != "8443" || st.HTTPS.Port != 8443 {
		t.Fatalf("TXT https_port=%q tls_sha256=%q, status https %+v", in.TXT["https_port"], pin, st.HTTPS)
	}
	tlsGet := r.start(t, "get", "GET_URL=https://10.77.1.1:8443/api/v2/hello", "GET_PIN="+pin)
	if line, _ := tlsGet.waitLine(0, 10*time.Second, "hello over HTTPS", func(l string) bool {
		return strings.HasPrefix(l, "BODY ") || strings.HasPrefix(l, "ERROR ")
	}); !strings.Contains(line, `"protocol":"0.1.0"`) {
		t.Errorf("hello over HTTPS with the TXT record's pin: %s", line)
	}
	wrongPin := r.start(t, "get", "GET_URL=https://10.77.1.1:8443/api/v2/hello", "GET_PIN="+strings.Repeat("00:", 31)+"00")
	if line, _ := wrongPin.waitLine(0, 10*time.Second, "a wrong pin", func(l string) bool {
		return strings.HasPrefix(l, "BODY ") || strings.HasPrefix(l, "ERROR ")
	}); !strings.HasPrefix(line, "ERROR ") {
		t.Errorf("a wrong pin connected: %s", line)
	}
	plain := r.start(t, "get", "GET_URL=http://10.77.1.1:8480/admin/journal?kind=RECEIPT")
	if line, _ := plain.waitLine(0, 10*time.Second, "the console over plain HTTP", func(l string) bool {
		return strings.HasPrefix(l, "STATUS ") || strings.HasPrefix(l, "ERROR ")
	}); line != "STATUS 308 LOCATION https://10.77.1.1:8443/admin/journal?kind=RECEIPT" {
		t.Errorf("the console over plain HTTP from the LAN: %s", line)
	}

	daemon.signal(syscall.SIGTERM)
	daemon.wait(t, 15*time.Second)
	if code := daemon.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d", code)
	}
	daemon.waitLine(0, 0, "goodbye in the log", func(l string) bool { return strings.Contains(l, "mDNS goodbye sent") })
}
