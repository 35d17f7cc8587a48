package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/daemontest"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/internal/testbin"
	"github.com/shopbridge/shopbridge/storage"
)

var binary string

func TestMain(m *testing.M) {
	testbin.Main(m, &binary)
}

// proc is a running shopbridge run.
type proc = daemontest.Daemon

// startDaemon runs `shopbridge run` on 127.0.0.1:0 with mDNS off and waits
// until it listens (daemontest.Start with this suite's binary).
func startDaemon(t testing.TB, data string, env []string, args ...string) *proc {
	t.Helper()
	return daemontest.Start(t, binary, data, env, args...)
}

// journalFlushed waits until the daemon's journal writer has written or
// dropped n entries and holds none queued: the flush a test needs before
// it reads the journal, or the log the writer may add to. n counts the
// terminal calls (/api/...) made so far; the test must make no other call
// the journal records (none when there is no upstream).
func journalFlushed(t testing.TB, p *proc, n int) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("the journal writer to have taken %d entries", n), 60*time.Second, func() bool {
		var st struct {
			Journal api.JournalStatus `json:"journal"`
		}
		_, b, _ := do(t, "GET", p.Base+"/admin/api/status", nil, nil)
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("status: %v: %s", err, b)
		}
		return st.Journal.Queued == 0 && st.Journal.Written+st.Journal.Dropped >= uint64(n)
	})
}

func do(t testing.TB, method, url string, body []byte, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// fixtureEntry is one row of the seed journal, bodies kept as raw JSON so
// that number text survives.
type fixtureEntry struct {
	Time      string          `json:"time"`
	Account   int             `json:"account"`
	Direction string          `json:"direction"`
	Kind      string          `json:"kind"`
	Body      json.RawMessage `json:"body"`
}

type fixtureRequest struct {
	Get  map[string]string `json:"get"`
	Body json.RawMessage   `json:"body"`
}

func loadFixture(t testing.TB) []fixtureEntry {
	// A copy of shared/fixtures/seed-journal.jsonl, so the test runs from
	// any clone.
	f, err := os.Open("testdata/seed-journal.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixtureEntry
	dec := json.NewDecoder(f)
	for dec.More() {
		var e fixtureEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if err := da.Decode(&va); err != nil {
		t.Fatalf("not JSON: %v: %s", err, a)
	}
	if err := db.Decode(&vb); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

// TestFixtureReplay loads what the cloud answered into a store through the
// storage API sync uses, then replays every request of the seed journal
// against the built binary, one daemon per account (one shop), and compares
// each answer with the cloud's: same JSON, same number text.
func TestFixtureReplay(t *testing.T) {
	entries := loadFixture(t)
	accounts := map[int][]fixtureEntry{}
	var order []int
	for _, e := range entries {
		if _, ok := accounts[e.Account]; !ok {
			order = append(order, e.Account)
		}
		accounts[e.Account] = append(accounts[e.Account], e)
	}
	replayed := 0
	for _, acct := range order {
		es := accounts[acct]
		t.Run(fmt.Sprint("account", acct), func(t *testing.T) {
			data := t.TempDir()
			seedFromFixture(t, filepath.Join(data, storage.FileName), es)
			p := startDaemon(t, data, []string{"SHOPBRIDGE_FAKE_NOW=2026-03-22T21:44:27+03:00"}, "--timezone", "Europe/Moscow")
			// Requests in journal order; each answer is the next response
			// of the same kind.
			used := map[int]bool{}
			for i, e := range es {
				if e.Direction != "request" {
					continue
				}
				var req fixtureRequest
				if err := json.Unmarshal(e.Body, &req); err != nil {
					t.Fatal(err)
				}
				want := -1
				for j := i + 1; j < len(es); j++ {
					if es[j].Direction == "response" && es[j].Kind == e.Kind && !used[j] {
						want = j
						break
					}
				}
				if want < 0 {
					t.Fatalf("no response for request %d", i)
				}
				used[want] = true
				url := p.Base + req.Get["q"]
				var q []string
				for k, v := range req.Get {
					if k != "q" && !(e.Kind == "BILL" && k == "id") {
						q = append(q, k+"="+v)
					}
				}
				if len(q) > 0 {
					url += "?" + strings.Join(q, "&")
				}
				method, body := http.MethodGet, []byte(nil)
				if e.Kind == "RECEIPT" {
					method, body = http.MethodPost, req.Body
				}
				status, got, _ := do(t, method, url, body, nil)
				if status != 200 {
					t.Fatalf("%s %s: status %d: %s", method, url, status, got)
				}
				wantBody := es[want].Body
				if string(wantBody) == "null" {
					if len(got) != 0 {
						t.Errorf("%s %s: want an empty body, got %s", method, url, got)
					}
				} else if !sameJSON(t, got, wantBody) {
					t.Errorf("%s %s:\n got %s\nwant %s", method, url, got, wantBody)
				}
				for _, num := range regexp.MustCompile(`\d+\.\d+`).FindAll(wantBody, -1) {
					if !bytes.Contains(got, num) {
						t.Errorf("%s %s: number text %s lost", method, url, num)
					}
				}
				replayed++
			}
			p.Stop(t)
		})
	}
	if replayed != 10 {
		t.Errorf("replayed %d requests, the fixture has 10", replayed)
	}
}

// seedFromFixture stores the cloud's answers of one account the way sync
// would: no-parameter lists replace the listed set, other lists add, bills
// are stored as their bytes, hello sets the system.
func seedFromFixture(t testing.TB, path string, es []fixtureEntry) {
	st, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 3, 22, 18, 0, 0, 0, time.UTC)
	for i, e := range es {
		if e.Direction != "response" {
			continue
		}
		switch e.Kind {
		case "HELLO":
			var h struct{ System string }
			json.Unmarshal(e.Body, &h)
			if err := st.SetSystem(h.System); err != nil {
				t.Fatal(err)
			}
		case "BILL":
			if _, _, err := st.PutBill(e.Body, at); err != nil {
				t.Fatal(err)
			}
		case "LIST":
			// Only lists answered before any receipt describe the cloud's
			// state; and a number= list is answered from the bill itself.
			req := requestFor(es, i)
			if req.Get["number"] != "" {
				continue
			}
			var raws []json.RawMessage
			json.Unmarshal(e.Body, &raws)
			var sums []shopbridge.BillSummary
			for _, r := range raws {
				s, err := shopbridge.ParseSummary(r)
				if err != nil {
					t.Fatal(err)
				}
				sums = append(sums, s)
			}
			kind := storage.ListAll
			if req.Get["date"] != "" {
				kind = storage.ListPartial
			}
			if _, err := st.ApplyList(sums, kind, at); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// requestFor finds the request a response answers: the latest earlier
// request of the same kind.
func requestFor(es []fixtureEntry, i int) fixtureRequest {
	for j := i - 1; j >= 0; j-- {
		if es[j].Direction == "request" && es[j].Kind == es[i].Kind {
			var r fixtureRequest
			json.Unmarshal(es[j].Body, &r)
			return r
		}
	}
	return fixtureRequest{}
}

func receiptBody(id, billID, typ, method string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"data":{"id":"d-%s","type":%q,"items":[{"name":"Чай «Пуэр» \"Шу\" 🍵","price":13.05,"quantity":72,"sumPrice":939.6}],"extras":{"billId":%q,"settlementMethod":%q},"totalAmount":4604.04},"type":"ReceiptCreated","version":2,"timestamp":1774204950650}`,
		id, id, typ, billID, method))
}

// TestSettleAfterReceipt: a SELL for a listed bill takes it off the
// no-parameter list, a PAYBACK brings it back, number= still finds it.
func TestSettleAndReopen(t *testing.T) {
	data := t.TempDir()
	p := startDaemon(t, data, nil, "--demo")
	listHas := func(id string) bool {
		_, b, _ := do(t, "GET", p.Base+"/api/v2/list", nil, nil)
		return bytes.Contains(b, []byte(`"id":`+id+`,`))
	}
	if !listHas("49040") {
		t.Fatal("demo bill 49040 not listed")
	}
	if s, b, _ := do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("sell-1", "49040", "SELL", "FullSettlement"), nil); s != 200 || len(b) != 0 {
		t.Fatalf("receipt: %d %s", s, b)
	}
	if listHas("49040") {
		t.Error("settled bill 49040 still in the no-parameter list")
	}
	if _, b, _ := do(t, "GET", p.Base+"/api/v2/list?number=49040-CRM", nil, nil); !bytes.Contains(b, []byte("49040")) {
		t.Errorf("number= must find a settled bill, got %s", b)
	}
	do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("payback-1", "49040", "PAYBACK", ""), nil)
	if !listHas("49040") {
		t.Error("PAYBACK did not reopen bill 49040")
	}
	do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("pre-1", "49024", "SELL", "FullPrepayment"), nil)
	if !listHas("49024") {
		t.Error("a prepayment must leave bill 49024 open")
	}
	do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("sell-2", "49020", "SELL", ""), nil)
	do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("sell-3", "49020", "SELL", "FullSettlement"), nil)
	_, b, _ := do(t, "GET", p.Base+"/admin/api/status", nil, nil)
	var st struct {
		PaidTwice []string `json:"paid_twice"`
		Receipts  int      `json:"receipts"`
	}
	json.Unmarshal(b, &st)
	if !reflect.DeepEqual(st.PaidTwice, []string{"49020"}) || st.Receipts != 5 {
		t.Errorf("status: paid_twice %v receipts %d, want [49020] and 5", st.PaidTwice, st.Receipts)
	}
}

// TestKillAfterAck SIGKILLs the daemon at random moments while a register
// posts receipts, 50 times over one store: every receipt answered 200 is
// on disk and in the outbox after the restart, and the store passes
// bbolt's consistency check.
func TestKillAfterAck(t *testing.T) {
	kills := 50
	if testing.Short() {
		kills = 10
	}
	data := t.TempDir()
	var acked []string
	n := 0
	for i := 0; i < kills; i++ {
		p := startDaemon(t, data, nil)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			client := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				n++
				id := fmt.Sprintf("kill-%d-%d", i, n)
				resp, err := client.Post(p.Base+"/api/v2/receipts", "application/json", bytes.NewReader(receiptBody(id, "", "SELL", "")))
				if err != nil {
					return // killed
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					acked = append(acked, id)
				}
			}
		}()
		// Not a wait for something: the random moment of the SIGKILL is
		// what the test varies.
		time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
		p.Kill()
		close(stop)
		<-done
	}
	if err := storage.CheckFile(filepath.Join(data, storage.FileName)); err != nil {
		t.Fatalf("store corrupt after %d kills: %v", kills, err)
	}
	st, err := storage.Open(filepath.Join(data, storage.FileName), storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	queued, err := st.Outbox(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	inOutbox := map[string]bool{}
	for _, r := range queued {
		inOutbox[r.EventID] = true
	}
	for _, id := range acked {
		if !inOutbox[id] {
			t.Errorf("receipt %s was answered 200 but is not in the outbox after SIGKILL", id)
		}
	}
	if len(acked) < kills {
		t.Fatalf("only %d receipts acknowledged over %d runs; the test did not exercise much", len(acked), kills)
	}
	t.Logf("%d kills, %d receipts acknowledged, all in the outbox, store checked", kills, len(acked))
}

// TestConcurrentRegisters: 200 registers post at once; each receipt is
// stored once and they share commits (fsync rounds).
func TestConcurrentRegisters(t *testing.T) {
	p := startDaemon(t, t.TempDir(), nil)
	commits := func() int {
		_, b, _ := do(t, "GET", p.Base+"/admin/api/status", nil, nil)
		var st struct {
			Receipts int
			Store    struct{ Commits int }
		}
		json.Unmarshal(b, &st)
		return st.Store.Commits
	}
	// Nothing to wait for before counting: the daemon commits what it
	// does at start before it listens, the journal writer holds nothing
	// (checked here), and its own timers (terminals, pruning) first fire
	// after 10 s; the journal batches of this test's calls are counted
	// below anyway.
	journalFlushed(t, p, 0)
	before := commits()
	const registers = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan string, registers)
	for i := 0; i < registers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := receiptBody(fmt.Sprintf("reg-%d", i), fmt.Sprint(1000+i), "SELL", "")
			resp, err := http.Post(p.Base+"/api/v2/receipts", "application/json", bytes.NewReader(body))
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- resp.Status
			}
			// A register retrying after a lost answer: still stored once.
			resp, err = http.Post(p.Base+"/api/v2/receipts", "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- "retry: " + resp.Status
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	after := commits()
	_, b, _ := do(t, "GET", p.Base+"/admin/api/status", nil, nil)
	var st struct{ Receipts, Outbox int }
	json.Unmarshal(b, &st)
	if st.Receipts != registers || st.Outbox != registers {
		t.Errorf("receipts %d outbox %d, want %d each", st.Receipts, st.Outbox, registers)
	}
	// Journal batches commit too; they are included, so this is an upper
	// bound on the commits receipts needed.
	used := after - before
	t.Logf("%d receipts (+%d duplicate retries) in %d commits", registers, registers, used)
	if used >= registers/2 {
		t.Errorf("%d commits for %d receipts: concurrent receipts do not share fsyncs", used, registers)
	}
}

// TestStartFailures: exit codes and one-line messages of SPEC §3.
func TestStartFailures(t *testing.T) {
	data := t.TempDir()
	p := startDaemon(t, data, nil)
	addr := strings.TrimPrefix(p.Base, "http://")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"port taken", []string{"run", "--listen", addr, "--data", t.TempDir(), "--mdns=false"}, 1, "already in use"},
		{"store locked", []string{"run", "--listen", "127.0.0.1:0", "--data", data, "--mdns=false"}, 1, "locked by another process"},
		{"bad flag", []string{"run", "--listen", "nonsense", "--mdns=false"}, 2, "--listen"},
		{"unknown flag", []string{"run", "--bogus"}, 2, "bogus"},
		{"bad interval", []string{"run", "--sync-interval", "fast"}, 2, "--sync-interval"},
		{"missing named config", []string{"run", "--config", "/nonexistent/shopbridge.toml"}, 2, "/nonexistent/shopbridge.toml"},
		{"bad timezone", []string{"run", "--timezone", "Mars/Olympus"}, 2, "--timezone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(binary, c.args...)
			cmd.Env = append(os.Environ(), "SHOPBRIDGE_CONFIG=")
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != c.code || !strings.Contains(string(out), c.want) {
				t.Errorf("exit %d, output %q; want exit %d mentioning %q", code, out, c.code, c.want)
			}
			if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); c.code == 2 && lines > 0 && c.name != "unknown flag" {
				t.Errorf("want one line, got %q", out)
			}
		})
	}
}

// TestBackupWhileServing: shopbridge backup saves a checked snapshot while
// the daemon answers.
func TestBackupWhileServing(t *testing.T) {
	p := startDaemon(t, t.TempDir(), nil, "--demo")
	do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("b-1", "49040", "SELL", ""), nil)
	dst := filepath.Join(t.TempDir(), "backup.db")
	out, err := exec.Command(binary, "backup", "--addr", p.Base, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("backup: %v: %s", err, out)
	}
	st, err := storage.Open(dst, storage.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if r, err := st.Receipt("b-1"); err != nil || r.State != shopbridge.ReceiptQueued {
		t.Errorf("backup lacks the queued receipt: %v", err)
	}
	if b, err := st.Bill("49040"); err != nil || !b.Settled {
		t.Errorf("backup lacks the settled bill: %v", err)
	}
}

// TestJournalCommand: shopbridge journal --full prints rows like the
// cloud's (the one-line view is tested in cmd/shopbridge).
func TestJournalCommand(t *testing.T) {
	p := startDaemon(t, t.TempDir(), nil, "--demo")
	do(t, "GET", p.Base+"/api/v2/bill/byid/49040", nil, map[string]string{"X-Evotor-Device-UUID": "dev-1", "Authorization": "Bearer secret-token"})
	do(t, "GET", p.Base+"/api/v2/list?number=49040-CRM", nil, nil)
	journalFlushed(t, p, 2)
	out, _ := exec.Command(binary, "journal", "--full", "--addr", p.Base, "--kind", "BILL", "--since", "1h").CombinedOutput()
	for _, want := range []string{"| Ответ (BILL) | {", "| Запрос (BILL) | {", "dev-1", `"summ": 4604.04`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("journal output lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("LIST")) {
		t.Errorf("--kind BILL printed LIST rows:\n%s", out)
	}
	if bytes.Contains(out, []byte("secret-token")) {
		t.Error("a token reached the journal")
	}
	js, err := exec.Command(binary, "journal", "--addr", p.Base, "--json").Output()
	if err != nil || !json.Valid(js) {
		t.Errorf("journal --json: %v: %s", err, js)
	}
}
