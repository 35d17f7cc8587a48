package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/daemon/service"
	"github.com/shopbridge/shopbridge/storage"
)

// TestStatusDaemonByHand: a daemon started by hand answers, so status
// leads with it (upstream, outbox, parked, the registers with when they
// were last seen, the console's URL) and exits 0; the service line follows
// and says the service is not installed.
func TestStatusDaemonByHand(t *testing.T) {
	p := startDaemon(t, t.TempDir(), "--demo")
	for _, dev := range []string{"reg-front", "reg-back"} {
		if code, body := request(t, "GET", p.Base+"/api/v2/list", "", "X-Evotor-Device-UUID", dev); code != 200 {
			t.Fatalf("list: %d %s", code, body)
		}
	}
	if code, body := request(t, "POST", p.Base+"/api/v2/receipts", `{"id":"evt-h1","data":{"type":"SELL","extras":{"billId":"49040"}}}`,
		"X-Evotor-Device-UUID", "reg-front"); code != 200 {
		t.Fatalf("receipt: %d %s", code, body)
	}
	// The journal writer records the registers as it writes: wait for it.
	var r result
	for deadline := time.Now().Add(30 * time.Second); ; {
		r = runBinary(t, nil, "status", "--addr", p.Base)
		if strings.Contains(r.stdout, "registers:  2 seen") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.code != 0 {
		t.Fatalf("status: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !strings.HasPrefix(lines[0], "upstream:   none") {
		t.Errorf("status does not lead with the daemon's state:\n%s", r.stdout)
	}
	for _, want := range []string{"outbox:     1 receipt(s) waiting", "evt-h1  bill 49040", "parked:     none", "registers:  2 seen",
		"  reg-front  127.0.0.1  last seen ", "(RECEIPT)", "  reg-back  127.0.0.1  last seen ", "(LIST)",
		"console:    " + p.Base + "/admin/", "daemon:     shopbridge "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	// The HTTPS line: the fingerprint of the certificate the HTTPS port
	// really serves, the same as the start-up log's.
	m := regexp.MustCompile(`https:      port (\d+), certificate SHA-256 ([0-9A-F:]{95})\n`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("status has no https line:\n%s", r.stdout)
	}
	conn, err := tls.Dial("tcp", "127.0.0.1:"+m[1], &tls.Config{InsecureSkipVerify: true}) // the fingerprint is the check
	if err != nil {
		t.Fatalf("HTTPS port %s: %v", m[1], err)
	}
	served := shopbridge.TLSFingerprint(conn.ConnectionState().PeerCertificates[0].Raw)
	conn.Close()
	if served != m[2] || !strings.Contains(p.Logs(), "fingerprint_sha256="+served) {
		t.Errorf("HTTPS serves %s; status printed %s; log:\n%s", served, m[2], p.Logs())
	}
	if strings.Index(r.stdout, "reg-front") > strings.Index(r.stdout, "reg-back") {
		t.Errorf("registers not newest first:\n%s", r.stdout)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "service:    ") {
		t.Errorf("the service line is not last:\n%s", r.stdout)
	}
	if st, err := service.Status(); err == nil && st == service.NotInstalled && last != "service:    not installed as a service (running by hand)" {
		t.Errorf("no service installed here; the service line is %q", last)
	}
}

// TestStatusNoDaemon: nothing answers at the address: status says so and
// exits with the code of the service's state (4 where no service is
// installed), never 0.
func TestStatusNoDaemon(t *testing.T) {
	addr := closedPort(t)
	r := runBinary(t, nil, "status", "--addr", addr)
	if !strings.HasPrefix(r.stdout, "daemon:     none answers: cannot reach the daemon at http://"+addr) {
		t.Errorf("status without a daemon:\n%s", r.stdout)
	}
	st, err := service.Status()
	want := map[service.State]int{service.NotInstalled: exitNotInstalled, service.Stopped: exitStopped, service.Running: exitNoAnswer}[st]
	if err != nil {
		want = exitCannotTell
	}
	if r.code != want || r.code == 0 {
		t.Errorf("exit %d, want %d (service %v, %v)\n%s", r.code, want, st, err, r.stdout)
	}
	if err == nil && st == service.NotInstalled && !strings.Contains(r.stdout, "service:    not installed; start the daemon by hand with shopbridge run") {
		t.Errorf("the service line does not say how to start it:\n%s", r.stdout)
	}
	help := runBinary(t, nil, "status", "--help")
	for _, want := range []string{"Exit status:", "  0  a daemon answers", "  1  no daemon answers, and the service manager cannot tell",
		"  3  no daemon answers; the service is installed and stopped", "  4  no daemon answers; no service is installed", "  5  the service manager says"} {
		if !strings.Contains(help.stdout, want) {
			t.Errorf("status --help lacks %q:\n%s", want, help.stdout)
		}
	}
}

// TestStartLogAndHints: the start-up log names the config file, the data
// directory, the allow ranges, standalone, the console's URL and warns of
// a SHOPBRIDGE_* variable that names no setting; the binary's mistakes
// each get their fix.
func TestStartLogAndHints(t *testing.T) {
	t.Setenv("SHOPBRIDGE_UPSTREM", "http://crm.example")
	t.Setenv("SHOPBRIDGE_STRICT", "1") // the tests' own: no warning
	data := t.TempDir()
	p := startDaemon(t, data)
	// The lines after "listening" may still be on their way.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.Logs(), "SHOPBRIDGE_UPSTREM") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	logs := p.Logs()
	port := p.Base[strings.LastIndex(p.Base, ":")+1:]
	for _, want := range []string{"msg=listening addr=127.0.0.1:" + port + " config=", " data=" + data + " ", " upstream=standalone ",
		" allow=loopback,10.0.0.0/8,", "msg=console this_pc=http://127.0.0.1:" + port + "/admin/",
		"environment variable SHOPBRIDGE_UPSTREM names no setting and is ignored (did you mean SHOPBRIDGE_UPSTREAM?)"} {
		if !strings.Contains(logs, want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "SHOPBRIDGE_STRICT") {
		t.Errorf("a test variable is warned of:\n%s", logs)
	}
	p.Stop(t)

	conf := filepath.Join(t.TempDir(), "shopbridge.toml")
	os.WriteFile(conf, []byte("listen = \"127.0.0.1:0\"\nupstrem = \"http://crm.example\"\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--mdns", "false"}, `shopbridge run: unexpected argument "false": a true/false flag takes its value after "=", as in --mdns=false` + "\n"},
		{[]string{"run", "--mdn=false"}, "shopbridge run: unknown flag --mdn (did you mean --mdns?) (see shopbridge run --help)\n"},
		{[]string{"run", "--config", conf}, `shopbridge run: config file ` + conf + `: unknown key "upstrem" (did you mean upstream?)` + "\n"},
		{[]string{"journal", "--sinse", "1h"}, "shopbridge journal: unknown flag --sinse (did you mean --since?) (see shopbridge journal --help)\n"},
		{[]string{"discover", "--json", "false"}, `shopbridge discover: unexpected argument "false": a true/false flag takes its value after "=", as in --json=false (see shopbridge discover --help)` + "\n"},
		{[]string{"parked", "list", "--limt", "5"}, "shopbridge parked list: unknown flag --limt (did you mean --limit?) (see shopbridge parked list --help)\n"},
	} {
		r := runBinary(t, nil, tt.args...)
		if r.code != 2 || r.stderr != tt.want {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	if h := runBinary(t, nil, "--help"); !strings.Contains(h.stdout, "http://127.0.0.1:8480/admin/") {
		t.Errorf("shopbridge --help does not say where the console is:\n%s", h.stdout)
	}
}

// TestPermissionErrorNamesUserAndFix: the daemon run as a user that may
// not write the data directory says so in one line: the path once, the
// user, chown and --data.
func TestPermissionErrorNamesUserAndFix(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the daemon as the user nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody here: %v", err)
	}
	var uid, gid uint32
	fmt.Sscan(nobody.Uid, &uid)
	fmt.Sscan(nobody.Gid, &gid)
	root, err := os.MkdirTemp("", "sb-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	os.Chmod(root, 0o755)
	data := filepath.Join(root, "data")
	os.Mkdir(data, 0o700) // root's
	// The test binary's own directory is root's alone: a copy nobody may run.
	bin := filepath.Join(root, "shopbridge")
	if b, err := os.ReadFile(binary); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatalf("copy the binary: %v", err)
	}
	for _, tt := range []struct{ dir, want string }{
		{data, "shopbridge run: permission denied on " + filepath.Join(data, storage.FileName) + " for user nobody (the user shopbridge runs as); let that user write the data directory (sudo chown -R nobody"},
		{filepath.Join(data, "sub"), "shopbridge run: cannot create the data directory " + filepath.Join(data, "sub") + ": permission denied for user nobody; create it for that user (sudo install -d -o nobody"},
	} {
		cmd := exec.Command(bin, "run", "--config", "/dev/null", "--mdns=false", "--listen", "127.0.0.1:0", "--data", tt.dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("run as nobody on %s: %v\n%s", tt.dir, err, out)
		}
		msg := string(out)
		if !strings.HasPrefix(msg, tt.want) || !strings.Contains(msg, "--data") || strings.Count(msg, "\n") != 1 {
			t.Errorf("got %q, want one line starting %q and naming --data", msg, tt.want)
		}
		if strings.Count(msg, filepath.Join(data, storage.FileName)) > 1 {
			t.Errorf("the path is named twice: %q", msg)
		}
	}
	// journal reading a root-only store as nobody (no daemon answers).
	os.Chmod(data, 0o755)
	s, err := storage.Open(filepath.Join(data, storage.FileName), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	cmd := exec.Command(bin, "journal", "--addr", closedPort(t), "--data", data)
	cmd.Env = []string{"SHOPBRIDGE_CONFIG=/dev/null"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, _ := cmd.CombinedOutput()
	db := filepath.Join(data, storage.FileName)
	if want := "permission denied reading " + db + " as user nobody: run it as root (sudo) or as the service's user (shopbridge)"; !strings.Contains(string(out), want) ||
		strings.Count(string(out), db) != 1 {
		t.Errorf("journal as nobody: %q, want it to say %q, naming the store once", out, want)
	}
}

// TestParkedListPages: a real store with more parked receipts than a page,
// served by a real daemon: status shows a few and the count, parked list
// pages them, --all and --json give every one once, outbox list the
// waiting ones, and outbox retry still re-queues one.
func TestParkedListPages(t *testing.T) {
	const parked, waiting = 130, 3
	data := t.TempDir()
	s, err := storage.Open(filepath.Join(data, storage.FileName), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range parked + waiting {
		id := fmt.Sprintf("evt-%03d", i)
		r := &shopbridge.Receipt{EventID: id, ReceivedAt: time.Now(), Type: "SELL", BillID: fmt.Sprint(5000 + i),
			Body: fmt.Appendf(nil, `{"id":%q,"data":{"type":"SELL","extras":{"billId":"%d"}}}`, id, 5000+i)}
		if _, err := s.AcceptReceipt(r); err != nil {
			t.Fatal(err)
		}
		if i < parked {
			if err := s.Park(id, fmt.Sprintf("HTTP 422: bill %d is closed upstream", 5000+i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, data)

	st := runBinary(t, nil, "status", "--addr", p.Base)
	if st.code != 0 || !strings.Contains(st.stdout, "parked:     130 receipt(s)") || !strings.Contains(st.stdout, "  … and 120 more: shopbridge parked list") ||
		strings.Count(st.stdout, "    answer: HTTP 422") != statusListShown {
		t.Errorf("status with 130 parked: exit %d\n%s", st.code, st.stdout)
	}
	if n := strings.Count(st.stdout, "\n"); n > 40 {
		t.Errorf("status prints %d lines with 130 parked", n)
	}

	r := runBinary(t, nil, "parked", "list", "--addr", p.Base, "--limit", "50")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || lines[0] != "parked: 130 receipt(s) the upstream refused (parked); 50 shown, oldest first" ||
		!strings.HasPrefix(lines[1], "SEQ") || len(lines) != 53 || !strings.HasPrefix(lines[52], "next page: shopbridge parked list --after ") ||
		!strings.Contains(lines[2], "evt-000") || !strings.Contains(lines[2], "HTTP 422: bill 5000 is closed upstream") {
		t.Fatalf("parked list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	next := strings.Fields(strings.TrimPrefix(lines[52], "next page: shopbridge "))
	r2 := runBinary(t, nil, append(next, "--addr", p.Base)...)
	if r2.code != 0 || !strings.Contains(r2.stdout, "evt-050") || strings.Contains(r2.stdout, "evt-049 ") {
		t.Errorf("the next page (%q): exit %d\n%s%s", next, r2.code, r2.stdout, r2.stderr)
	}

	all := runBinary(t, nil, "parked", "list", "--addr", p.Base, "--limit", "17", "--all", "--json")
	var page api.QueuePage
	if err := json.Unmarshal([]byte(all.stdout), &page); err != nil || all.code != 0 {
		t.Fatalf("parked list --all --json: exit %d, %v\n%s", all.code, err, all.stderr)
	}
	seen := map[string]bool{}
	for _, rc := range page.Receipts {
		seen[rc.EventID] = true
	}
	if page.Total != parked || len(page.Receipts) != parked || len(seen) != parked || page.NextAfter != 0 {
		t.Errorf("--all: total %d, %d receipts (%d distinct), next %d; want %d", page.Total, len(page.Receipts), len(seen), page.NextAfter, parked)
	}

	ob := runBinary(t, nil, "outbox", "list", "--addr", p.Base)
	if ob.code != 0 || !strings.HasPrefix(ob.stdout, "outbox: 3 receipt(s) waiting in the outbox; 3 shown") || !strings.Contains(ob.stdout, "evt-130") ||
		strings.Contains(ob.stdout, "next page") {
		t.Errorf("outbox list: exit %d\n%s%s", ob.code, ob.stdout, ob.stderr)
	}
	if r := runBinary(t, nil, "outbox", "retry", "evt-000", "--addr", p.Base); r.code != 0 {
		t.Errorf("outbox retry: exit %d %s", r.code, r.stderr)
	}
	if r := runBinary(t, nil, "parked", "retry", "evt-001", "--addr", p.Base); r.code != 0 {
		t.Errorf("parked retry: exit %d %s", r.code, r.stderr)
	}
	if ob := runBinary(t, nil, "outbox", "list", "--addr", p.Base); !strings.HasPrefix(ob.stdout, "outbox: 5 receipt(s) waiting") {
		t.Errorf("after two retries:\n%s", ob.stdout)
	}
	if r := runBinary(t, nil, "outbox", "list", "--addr", p.Base, "--limit", "0"); r.code != 2 {
		t.Errorf("--limit 0: exit %d", r.code)
	}
}
