package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/damage"
	"github.com/shopbridge/shopbridge/storage"
)

// stackMarks are what a Go stack trace or runtime crash prints.
var stackMarks = []string{"goroutine ", "panic:", "fatal error:", "[signal "}

// oneLine checks that out is one line naming path and the restore, with no
// stack trace.
func checkRefusal(t *testing.T, what string, r result, path string) {
	t.Helper()
	out := strings.TrimRight(r.stdout+r.stderr, "\n")
	if r.code != 1 {
		t.Errorf("%s: exit %d, want 1; output %q", what, r.code, out)
	}
	for _, m := range stackMarks {
		if strings.Contains(out, m) {
			t.Errorf("%s: the output has %q:\n%s", what, m, out)
		}
	}
	if strings.Contains(out, "\n") || !strings.Contains(out, path) || !strings.Contains(out, "shopbridge restore") {
		t.Errorf("%s: want one line naming %s and `shopbridge restore`, got %q", what, path, out)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestDamagedStoresRefused runs the daemon and every command that opens a
// store (journal --data; uninstall reads the store the same way, through
// storage.Open read-only, but would touch the OS service) on each damaged
// copy internal/damage makes: exit 1, one line naming the file, what is
// wrong and the restore, never a stack trace, and the file unchanged.
func TestDamagedStoresRefused(t *testing.T) {
	src, _, err := damage.MakeSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	copies, err := damage.Make(src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + closedPort(t)
	perClass := map[string]int{}
	for _, c := range copies {
		perClass[c.Class]++
		t.Run(c.Name, func(t *testing.T) {
			before := fileHash(t, c.Path)
			run := runBinary(t, nil, "run", "--listen", "127.0.0.1:0", "--data", c.Dir, "--mdns=false")
			checkRefusal(t, "run", run, c.Path)
			journal := runBinary(t, nil, "journal", "--addr", closed, "--data", c.Dir)
			checkRefusal(t, "journal --data", journal, c.Path)
			t.Logf("run: exit %d: %s", run.code, strings.TrimSpace(run.stderr))
			t.Logf("journal --data: exit %d: %s", journal.code, strings.TrimSpace(journal.stderr))
			if fileHash(t, c.Path) != before {
				t.Errorf("the damaged file was changed")
			}
		})
	}
	t.Logf("%d copies: %v", len(copies), perClass)
}

// TestDamageWhileServingDaemon damages every tree page of the store under
// a running daemon (a process): the next reads and writes answer 503 with
// code 3001, /healthz 503 with the reason, status carries it, backup fails
// with one line, the process neither crashes nor exits, and it stops
// cleanly on SIGTERM. Started again, it refuses the file with one line.
func TestDamageWhileServingDaemon(t *testing.T) {
	data := t.TempDir()
	src, _, err := damage.MakeSource(data)
	if err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, data)
	acked := 0
	for i := range 20 {
		body := fmt.Sprintf(`{"id":"before-%d","data":{"type":"SELL"}}`, i)
		if code, resp := request(t, "POST", p.Base+"/api/v2/receipts", body); code != 200 {
			t.Fatalf("receipt before the damage: %d %s", code, resp)
		}
		acked++
	}
	kinds, ps, err := storage.PageMap(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	junk := make([]byte, ps)
	for id, k := range kinds {
		if k == storage.PageLeaf || k == storage.PageBranch {
			for i := range junk {
				junk[i] = byte(rng.IntN(256))
			}
			f.WriteAt(junk, int64(id*ps))
		}
	}
	f.Close()

	// A read that meets the damage answers 503; one that happens to read
	// junk that looks like a page may still answer (bbolt keeps no
	// checksums of data pages), so the reads are several.
	var post int
	var postBody string
	read503 := 0
	for i := range 5 {
		for _, path := range []string{"/api/v2/list", "/api/v2/list?date=2020-01-01", "/api/v2/bill/byid/900700", "/api/v2/list?number=900700"} {
			code, body := request(t, "GET", p.Base+path, "")
			if code == 503 && strings.Contains(body, `"code":3001`) {
				read503++
			} else if code != 200 && code != 404 {
				t.Errorf("GET %s on a damaged store: %d %s", path, code, body)
			}
		}
		post, postBody = request(t, "POST", p.Base+"/api/v2/receipts", fmt.Sprintf(`{"id":"after-%d","data":{"type":"SELL"}}`, i))
		if post == 200 {
			t.Errorf("a receipt was acknowledged after its store was damaged")
		}
	}
	if read503 == 0 {
		t.Errorf("no read of a store whose every tree page was overwritten answered 503 with code 3001")
	}
	if post != 503 || !strings.Contains(postBody, `"code":3001`) {
		t.Errorf("receipt on a damaged store: %d %s, want 503 and code 3001", post, postBody)
	}
	if code, body := request(t, "GET", p.Base+"/healthz", ""); code != 503 || !strings.Contains(body, storage.FaultDamaged) {
		t.Errorf("/healthz: %d %q, want 503 naming %q", code, body, storage.FaultDamaged)
	}
	_, body := request(t, "GET", p.Base+"/admin/api/status", "")
	var st struct {
		StoreHealth storage.Health `json:"store_health"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.StoreHealth.Reason != storage.FaultDamaged {
		t.Errorf("status store_health: %+v (%v)", st.StoreHealth, err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	backup := runBinary(t, nil, "backup", "--addr", p.Base, out)
	if backup.code == 0 {
		t.Errorf("backup of a damaged store exited 0: %s", backup.stdout)
	}
	for _, m := range stackMarks {
		if strings.Contains(backup.stdout+backup.stderr, m) || strings.Contains(p.Logs(), m) {
			t.Errorf("backup or the daemon's log has %q:\n%s\n%s", m, backup.stderr, p.Logs())
		}
	}
	if strings.Count(strings.TrimSpace(backup.stderr), "\n") != 0 {
		t.Errorf("backup printed more than one line: %q", backup.stderr)
	}
	t.Logf("backup: exit %d: %s", backup.code, strings.TrimSpace(backup.stderr))
	select {
	case <-p.Done():
		t.Fatalf("the daemon exited on a damaged store:\n%s", p.Logs())
	case <-time.After(100 * time.Millisecond):
	}
	p.Stop(t)
	t.Logf("acknowledged before the damage: %d; acknowledged after: 0 of 5 (503)", acked)
	again := runBinary(t, nil, "run", "--listen", "127.0.0.1:0", "--data", data, "--mdns=false")
	checkRefusal(t, "run again", again, src)
	t.Logf("started again: exit %d: %s", again.code, strings.TrimSpace(again.stderr))
}
