package main

// End-to-end tests of the command line as an installer meets it: the built
// binary, a real daemon process, real files.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/daemontest"
	"github.com/shopbridge/shopbridge/internal/testbin"
	"github.com/shopbridge/shopbridge/storage"
)

var binary string

func TestMain(m *testing.M) {
	testbin.Main(m, &binary)
}

// result is what a run of the binary printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// runBinary runs the binary with env added to a clean environment (no
// SHOPBRIDGE_* of the machine running the tests).
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOPBRIDGE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// No config file of this machine either: an empty one, unless a test
	// names another.
	empty := filepath.Join(t.TempDir(), "empty.toml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(append(cmd.Env, "SHOPBRIDGE_CONFIG="+empty), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("shopbridge %q: %v", args, err)
	}
	return r
}

// daemonProc is a running shopbridge run.
type daemonProc = daemontest.Daemon

// startDaemon runs shopbridge run on 127.0.0.1:0 with mDNS off and waits
// until it listens. args come after the defaults, so they win.
func startDaemon(t *testing.T, data string, args ...string) *daemonProc {
	t.Helper()
	return startDaemonOf(t, binary, data, args...)
}

// startDaemonOf is startDaemon with another build of the binary.
func startDaemonOf(t *testing.T, binary, data string, args ...string) *daemonProc {
	t.Helper()
	return daemontest.Start(t, binary, data, nil, args...)
}

func request(t *testing.T, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

var singleDash = regexp.MustCompile(`(^|[\s\[(,|])-[a-zA-Z]`)

// TestHelpEverySubcommand: --help on every subcommand, from the binary, in
// one style: exit 0, stdout starting "Usage: shopbridge <cmd>", --flag
// spelling only, each default once, booleans unquoted; a bad flag is one
// line naming it in the same spelling, exit 2.
func TestHelpEverySubcommand(t *testing.T) {
	var names []string
	seen := map[string]bool{}
	for _, g := range commandGroups {
		for _, c := range g.commands {
			if seen[c.name] {
				t.Errorf("command %q is in the table twice", c.name)
			}
			seen[c.name] = true
			names = append(names, c.name)
		}
	}
	if len(names) < 14 {
		t.Fatalf("only %d subcommands registered: %v", len(names), names)
	}
	check := func(t *testing.T, usage string, r result) {
		t.Helper()
		if r.code != 0 || r.stderr != "" {
			t.Errorf("exit %d, stderr %q; want exit 0 and nothing on stderr", r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stdout, usage) {
			t.Errorf("help does not start with %q:\n%s", usage, r.stdout)
		}
		for _, line := range strings.Split(r.stdout, "\n") {
			if m := singleDash.FindString(line); m != "" {
				t.Errorf("single-dash spelling %q in %q", m, line)
			}
			if strings.Count(line, "(default") > 1 {
				t.Errorf("default shown twice: %q", line)
			}
			if strings.Contains(line, `"true"`) || strings.Contains(line, `"false"`) {
				t.Errorf("quoted boolean: %q", line)
			}
			if strings.Contains(line, `(default "")`) || strings.Contains(line, "Usage of") {
				t.Errorf("the flag package's own help: %q", line)
			}
		}
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			usage := "Usage: shopbridge " + n
			r := runBinary(t, nil, n, "--help")
			check(t, usage, r)
			if h := runBinary(t, nil, "help", n); h.stdout != r.stdout || h.code != 0 {
				t.Errorf("shopbridge help %s differs from %s --help", n, n)
			}
			if r := runBinary(t, nil, n, "-h"); r.code != 0 || !strings.HasPrefix(r.stdout, usage) {
				t.Errorf("-h: exit %d\n%s", r.code, r.stdout)
			}
			cmd := []string{n}
			if n == "outbox" {
				cmd = []string{"outbox", "retry"}
			}
			if n == "parked" {
				cmd = []string{"parked", "list"}
			}
			name := strings.Join(cmd, " ")
			bad := runBinary(t, nil, append(cmd, "--bogus")...)
			want := fmt.Sprintf("shopbridge %s: unknown flag --bogus (see shopbridge %s --help)\n", name, name)
			if bad.code != 2 || bad.stderr != want || bad.stdout != "" {
				t.Errorf("%s --bogus: exit %d, stderr %q, stdout %q; want exit 2 and %q", name, bad.code, bad.stderr, bad.stdout, want)
			}
		})
	}
	// The usage lines name the arguments.
	for cmd, want := range map[string]string{
		"backup": "Usage: shopbridge backup [flags] FILE\n", "outbox retry": "Usage: shopbridge outbox retry [flags] EVENT_ID\n",
		"outbox": "Usage: shopbridge outbox list|retry ...\n", "parked list": "Usage: shopbridge parked list [flags]\n",
		"service-hook": "Usage: shopbridge service-hook setup|teardown\n", "version": "Usage: shopbridge version\n",
		"run": "Usage: shopbridge run [flags]\n",
	} {
		if r := runBinary(t, nil, append(strings.Fields(cmd), "--help")...); !strings.HasPrefix(r.stdout, want) {
			t.Errorf("%s --help starts %q, want %q", cmd, strings.SplitN(r.stdout, "\n", 2)[0], want)
		}
	}
	// run's help: each flag once, booleans that default to true shown
	// with how to turn them off, descriptive defaults once.
	runHelp := runBinary(t, nil, "run", "--help").stdout
	run := strings.Join(strings.Fields(runHelp), " ") // as read, across wrapped lines
	for _, want := range []string{"--mdns=BOOL", "off: --mdns=false", "--timezone NAME", "(default the OS zone)",
		"--upstream URL", "(default none: standalone", "--allow CIDR,...", "loopback always may", "SHOPBRIDGE_<NAME>"} {
		if !strings.Contains(run, want) {
			t.Errorf("run --help lacks %q:\n%s", want, run)
		}
	}
	for _, flag := range []string{"--listen ", "--data ", "--sync-interval ", "--log-level ", "--demo"} {
		if n := strings.Count(runHelp, "\n  "+flag); n != 1 {
			t.Errorf("run --help lists %s %d times", flag, n)
		}
	}
	install := runBinary(t, nil, "install", "--help").stdout
	if !strings.Contains(install, "--no-start") || !strings.Contains(install, "--upstream URL") {
		t.Errorf("install --help lacks its own flag or run's:\n%s", install)
	}
	// The top level.
	if r := runBinary(t, nil, "--help"); r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: shopbridge <command>") {
		t.Errorf("shopbridge --help: exit %d\n%s", r.code, r.stdout)
	}
	if r := runBinary(t, nil); r.code != 2 || !strings.HasPrefix(r.stderr, "Usage: shopbridge <command>") {
		t.Errorf("shopbridge alone: exit %d, stderr %q", r.code, r.stderr)
	}
	// Bad values say what they want, in one line.
	for _, args := range [][]string{{"journal", "--since", "yesterday"}, {"discover", "--timeout", "soon"},
		{"run", "--sync-interval", "fast"}, {"backup"}, {"journal", "--limit", "lots"}} {
		r := runBinary(t, nil, args...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "shopbridge "+args[0]+": ") ||
			singleDash.MatchString(r.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line", args, r.code, r.stderr)
		}
	}
}

// readmeConfig is the sample config file of the README.
func readmeConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)A config file:\n\n```toml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no sample config file (A config file: ```toml ...```)")
	}
	return string(m[1])
}

// TestReadmeAllowKeepsLoopback: with the README's sample config, whose
// allow list names the shop's LAN only, the PC's own loopback still gets
// answers, and status, journal and backup work.
func TestReadmeAllowKeepsLoopback(t *testing.T) {
	conf := readmeConfig(t)
	if !strings.Contains(conf, `allow = ["192.168.1.0/24"]`) {
		t.Fatalf("the README's sample config has no LAN-only allow list any more:\n%s", conf)
	}
	path := filepath.Join(t.TempDir(), "shopbridge.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file's upstream is crm.example.com: keep the test on loopback
	// (flags beat the file).
	p := startDaemon(t, t.TempDir(), "--config", path, "--upstream", "http://"+closedPort(t))
	if code, body := request(t, "GET", p.Base+"/api/v2/hello", ""); code != 200 {
		t.Fatalf("hello from loopback with the README's config: %d %s", code, body)
	}
	st := runBinary(t, nil, "status", "--addr", p.Base)
	if !strings.Contains(st.stdout, "upstream:") || strings.Contains(st.stdout, "not allowed") {
		t.Errorf("status with the README's config:\n%s%s", st.stdout, st.stderr)
	}
	// The journal is written behind the answers.
	var r result
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r = runBinary(t, nil, "journal", "--addr", p.Base, "--kind", "HELLO"); r.code != 0 || strings.Contains(r.stdout, "HELLO") {
			break
		}
	}
	if r.code != 0 || !strings.Contains(r.stdout, "HELLO") {
		t.Errorf("journal with the README's config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dst := filepath.Join(t.TempDir(), "b.db")
	if r := runBinary(t, nil, "backup", "--addr", p.Base, dst); r.code != 0 {
		t.Errorf("backup with the README's config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The same daemon found through the config file, as an installer runs
	// the tools: --config names the file, its listen is overridden here by
	// SHOPBRIDGE_LISTEN, as the service would by flag.
	r = runBinary(t, []string{"SHOPBRIDGE_LISTEN=" + strings.TrimPrefix(p.Base, "http://")}, "status", "--config", path)
	if !strings.Contains(r.stdout, "upstream:") {
		t.Errorf("status --config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestBackupRefusesToOverwrite: backup FILE keeps an existing FILE unless
// --force.
func TestBackupRefusesToOverwrite(t *testing.T) {
	p := startDaemon(t, t.TempDir(), "--demo")
	dir := t.TempDir()
	dst := filepath.Join(dir, "shopbridge.db")
	if r := runBinary(t, nil, "backup", "--addr", p.Base, dst); r.code != 0 || !strings.Contains(r.stdout, "checked") {
		t.Fatalf("first backup: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(dst, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, nil, "backup", "--addr", p.Base, dst)
	if r.code != 1 || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("backup over an existing file: exit %d, stderr %q; want exit 1 naming --force", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(dst); string(b) != "an older backup" {
		t.Errorf("the existing file was changed without --force")
	}
	// --force after the file, as people type it.
	if r := runBinary(t, nil, "backup", "--addr", p.Base, dst, "--force"); r.code != 0 {
		t.Fatalf("backup --force: exit %d\n%s", r.code, r.stderr)
	}
	if err := storage.CheckFile(dst); err != nil {
		t.Errorf("backup --force did not write a good store: %v", err)
	}
	if r := runBinary(t, nil, "backup", "--addr", p.Base, dir); r.code != 1 || !strings.Contains(r.stderr, "is a directory") {
		t.Errorf("backup to a directory: exit %d, stderr %q", r.code, r.stderr)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".shopbridge-backup-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// exchange is one request a register makes in TestJournalCommandLines.
type exchange struct {
	method, path, body string
	status             int
	want               []string // on its journal line
}

// TestJournalCommandLines: shopbridge journal prints one line per exchange
// with a short summary, --full the cloud-style rows, and reads the store
// read-only when the daemon is stopped, saying so on stderr.
func TestJournalCommandLines(t *testing.T) {
	data := t.TempDir()
	p := startDaemon(t, data, "--demo")
	exchanges := []exchange{
		{"GET", "/api/v2/hello", "", 200, []string{"HELLO", " 200 ", "system "}},
		{"GET", "/api/v2/list", "", 200, []string{"LIST", " 200 ", " bills"}},
		{"GET", "/api/v2/list?number=49040-CRM", "", 200, []string{"number=49040-CRM: 1 bill"}},
		{"GET", "/api/v2/bill/byid/49040", "", 200, []string{"BILL", "bill 49040 (49040-CRM) summ 4604.04"}},
		{"GET", "/api/v2/bill/byid/999", "", 404, []string{"BILL", " 404 ", "no bill with id 999"}},
		{"POST", "/api/v2/receipts", `{"id":"evt-j1","data":{"type":"SELL","extras":{"billId":"49040"}}}`, 200,
			[]string{"RECEIPT", " 200 ", "receipt evt-j1 SELL bill 49040"}},
		{"POST", "/api/v2/receipts", `{"id":"evt-j1","data":{"type":"PAYBACK"}}`, 409,
			[]string{"RECEIPT", " 409 ", "receipt evt-j1 PAYBACK", "already"}},
	}
	for _, e := range exchanges {
		if code, body := request(t, e.method, p.Base+e.path, e.body, "X-Evotor-Device-UUID", "reg-7", "Authorization", "Bearer tok-secret"); code != e.status {
			t.Fatalf("%s %s: %d %s, want %d", e.method, e.path, code, body, e.status)
		}
	}
	// The journal is written behind the answers.
	var live result
	deadline := time.Now().Add(20 * time.Second)
	for {
		live = runBinary(t, nil, "journal", "--addr", p.Base)
		if strings.Count(live.stdout, "\n") >= 1+len(exchanges) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimRight(live.stdout, "\n"), "\n")
	if live.code != 0 || len(lines) != 1+len(exchanges) {
		t.Fatalf("journal: exit %d, %d lines for %d exchanges (want one each and a header):\n%s%s", live.code, len(lines), len(exchanges), live.stdout, live.stderr)
	}
	if !strings.Contains(live.stderr, "from the daemon at "+p.Base) {
		t.Errorf("journal does not say where it read: %q", live.stderr)
	}
	for i, e := range exchanges {
		line := lines[len(exchanges)-i] // newest first
		for _, w := range append(e.want, "127.0.0.1 reg-7") {
			if !strings.Contains(line, w) {
				t.Errorf("journal line for %s %s lacks %q:\n%s", e.method, e.path, w, line)
			}
		}
	}
	if strings.Contains(live.stdout, "tok-secret") {
		t.Error("a token reached the journal")
	}
	full := runBinary(t, nil, "journal", "--addr", p.Base, "--full", "--kind", "receipt")
	for _, want := range []string{"| Ответ (RECEIPT) | 200 |", "| Запрос (RECEIPT) | {", `"evt-j1"`, "| Ответ (RECEIPT) | 409 {"} {
		if !strings.Contains(full.stdout, want) {
			t.Errorf("journal --full lacks %q:\n%s", want, full.stdout)
		}
	}
	if strings.Contains(full.stdout, "BILL") {
		t.Errorf("--kind receipt printed other kinds:\n%s", full.stdout)
	}

	// While the daemon runs its store is locked; an --addr where nothing
	// answers says so instead of waiting or reading a half store.
	r := runBinary(t, nil, "journal", "--addr", closedPort(t), "--data", data)
	if r.code != 1 || !strings.Contains(r.stderr, "held by a running shopbridge") {
		t.Errorf("journal with a wrong --addr while the daemon runs: exit %d, %q", r.code, r.stderr)
	}

	p.Stop(t)
	stopped := runBinary(t, nil, "journal", "--addr", p.Base, "--data", data)
	if stopped.code != 0 || !strings.Contains(stopped.stderr, "read-only") || !strings.Contains(stopped.stderr, filepath.Join(data, "shopbridge.db")) {
		t.Fatalf("journal of a stopped daemon: exit %d, stderr %q", stopped.code, stopped.stderr)
	}
	if stopped.stdout != live.stdout {
		t.Errorf("the stopped daemon's journal differs from the running one's:\nrunning:\n%s\nstopped:\n%s", live.stdout, stopped.stdout)
	}
	// The data directory as run finds it: SHOPBRIDGE_DATA, and the config
	// file's data key.
	if r := runBinary(t, []string{"SHOPBRIDGE_DATA=" + data}, "journal", "--addr", p.Base); r.stdout != live.stdout {
		t.Errorf("journal with SHOPBRIDGE_DATA: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	conf := filepath.Join(t.TempDir(), "shopbridge.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("data = %q\n", data)), 0o600)
	if r := runBinary(t, nil, "journal", "--addr", p.Base, "--config", conf, "--json"); r.code != 0 {
		t.Errorf("journal --config --json: exit %d, %s", r.code, r.stderr)
	} else {
		var rows []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != len(exchanges) {
			t.Errorf("journal --json from the store: %d rows, %v, want %d", len(rows), err, len(exchanges))
		}
	}
	if r := runBinary(t, nil, "journal", "--addr", p.Base, "--data", t.TempDir()); r.code != 1 || !strings.Contains(r.stderr, "no store at") {
		t.Errorf("journal with no daemon and no store: exit %d, %q", r.code, r.stderr)
	}
}

// TestStandaloneOutboxAndShutdownLog: without an upstream, receipts in the
// outbox stay there, and status and the log say so; the shutdown log names
// the signal.
func TestStandaloneOutboxAndShutdownLog(t *testing.T) {
	data := t.TempDir()
	p := startDaemon(t, data, "--demo")
	if code, body := request(t, "POST", p.Base+"/api/v2/receipts", `{"id":"evt-s1","data":{"type":"SELL","extras":{"billId":"49040"}}}`); code != 200 {
		t.Fatalf("receipt: %d %s", code, body)
	}
	st := runBinary(t, nil, "status", "--addr", p.Base)
	if !strings.Contains(st.stdout, "1 receipt(s) waiting") || !strings.Contains(st.stdout, "stay until an upstream is configured") {
		t.Errorf("standalone status with a receipt waiting:\n%s", st.stdout)
	}
	p.Stop(t)
	logs := p.Logs()
	for _, want := range []string{`msg=stopping signal=SIGTERM`, "stay there until an upstream is configured", "outbox=1", "when=\"at stop\""} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	p = startDaemon(t, data)
	// The warning follows the listening line.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Logs(), "when=\"at start\"") && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.Logs(), "when=\"at start\"") || !strings.Contains(p.Logs(), "outbox=1") {
		t.Errorf("the start log does not say receipts wait:\n%s", p.Logs())
	}
	p.Cmd.Process.Signal(os.Interrupt)
	<-p.Done()
	if !strings.Contains(p.Logs(), "msg=stopping signal=SIGINT") {
		t.Errorf("the log does not name SIGINT:\n%s", p.Logs())
	}
}
