//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/damage"
	"github.com/shopbridge/shopbridge/internal/loopfs"
	"github.com/shopbridge/shopbridge/storage"
)

// Failing-disk tests: the daemon (a process) on an ext4 file system on a
// loop device that the test makes fail under it. Receipts acknowledged
// before the fault are counted against those found once the disk is back
// (the device whole again, e2fsck, mounted again).

// diskDaemon makes a store like a shop's on fs and starts the daemon on it.
func diskDaemon(t *testing.T, fs *loopfs.FS) (*daemonProc, string) {
	t.Helper()
	data := filepath.Join(fs.Dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := damage.MakeSource(data); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, data), data
}

// postReceipts posts n receipts named prefix-i and returns the ids answered
// 200 and the last other answer.
func postReceipts(t *testing.T, p *daemonProc, prefix string, n int) (acked []string, code int, body string) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		c, b := request(t, "POST", p.Base+"/api/v2/receipts", fmt.Sprintf(`{"id":%q,"data":{"type":"SELL"}}`, id))
		if c == 200 {
			acked = append(acked, id)
		} else {
			code, body = c, b
		}
	}
	return acked, code, body
}

// storeHealth reads the daemon's status.
func storeHealth(t *testing.T, p *daemonProc) storage.Health {
	t.Helper()
	_, body := request(t, "GET", p.Base+"/admin/api/status", "")
	var st struct {
		StoreHealth storage.Health `json:"store_health"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status: %v: %s", err, body)
	}
	return st.StoreHealth
}

// wantDegraded checks /healthz, status and the stack-free log of a
// daemon whose disk failed, and that it still runs.
func wantDegraded(t *testing.T, p *daemonProc, reasons ...string) storage.Health {
	t.Helper()
	h := storeHealth(t, p)
	ok := false
	for _, r := range reasons {
		ok = ok || h.Reason == r
	}
	if h.State != storage.StateDegraded || !ok {
		t.Errorf("store health %+v, want degraded for one of %q", h, reasons)
	}
	if code, body := request(t, "GET", p.Base+"/healthz", ""); code != 503 || !strings.Contains(body, h.Reason) {
		t.Errorf("/healthz: %d %q, want 503 with the reason", code, body)
	}
	for _, m := range stackMarks {
		if strings.Contains(p.Logs(), m) {
			t.Errorf("the daemon's log has %q:\n%s", m, p.Logs())
		}
	}
	select {
	case <-p.Done():
		t.Fatalf("the daemon exited:\n%s", p.Logs())
	default:
	}
	return h
}

// stopAny sends SIGTERM and waits; a daemon on a failed disk may exit 1
// (its last commit failed), but never by a signal or a crash.
func stopAny(t *testing.T, p *daemonProc) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon did not stop on SIGTERM:\n%s", p.Logs())
	}
	ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() || ws.ExitStatus() > 1 {
		t.Errorf("daemon ended with %v:\n%s", p.Cmd.ProcessState, p.Logs())
	}
}

// countFound repairs the disk and counts the acknowledged receipts in the
// store.
func countFound(t *testing.T, fs *loopfs.FS, data string, acked []string) int {
	t.Helper()
	fs.Repair()
	s, err := storage.Open(filepath.Join(data, storage.FileName), storage.Options{ReadOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("the store after the disk came back: %v", err)
	}
	defer s.Close()
	found := 0
	for _, id := range acked {
		if r, err := s.Receipt(id); err == nil && r != nil {
			found++
		} else {
			t.Errorf("acknowledged receipt %s is not found: %v", id, err)
		}
	}
	return found
}

// TestReadErrorDegrades: the disk under a running daemon fails reads
// (16.3: GET /api/v2/list used to die with SIGBUS). The list answers 503
// with code 3001, the store is degraded with the reason "read error", the
// daemon keeps running, and every receipt acknowledged before is found
// once the disk is back.
func TestReadErrorDegrades(t *testing.T) {
	fs := loopfs.Mount(t, 64<<20, "")
	p, data := diskDaemon(t, fs)
	acked, code, body := postReceipts(t, p, "before", 20)
	if len(acked) != 20 {
		t.Fatalf("receipts on a sound disk: %d acknowledged, last answer %d %s", len(acked), code, body)
	}
	// The bills' pages leave the page cache (the daemon has not mapped
	// them yet) and the device ends at 1 MiB: reading them faults.
	loopfs.DropCache(t, filepath.Join(data, storage.FileName))
	fs.Limit(1 << 20)
	var list int
	var listBody string
	for _, path := range []string{"/api/v2/list", "/api/v2/list?date=2020-01-01", "/api/v2/bill/byid/900700"} {
		list, listBody = request(t, "GET", p.Base+path, "")
		t.Logf("GET %s on a failing disk: %d %s", path, list, strings.TrimSpace(listBody))
		if list == 503 {
			break
		}
	}
	if list != 503 || !strings.Contains(listBody, `"code":3001`) {
		t.Errorf("reads on a failing disk: %d %s, want 503 and code 3001", list, listBody)
	}
	h := wantDegraded(t, p, storage.FaultReadFault, storage.FaultIO)
	after, code, body := postReceipts(t, p, "after", 5)
	if code != 503 || !strings.Contains(body, `"code":3001`) {
		t.Errorf("a receipt on a failing disk: %d %s", code, body)
	}
	stopAny(t, p)
	found := countFound(t, fs, data, acked)
	t.Logf("read fault: reason %q (%s); acknowledged before %d, found %d; acknowledged on the failing disk %d of 5",
		h.Reason, h.Error, len(acked), found, len(after))
}

// TestShrunkDeviceWritesFail: the loop device shrinks under the store's
// file (its blocks past 1 MiB are gone): receipts get 503 with code 3001,
// the store is degraded (I/O error, or read-only once ext4 gave up on its
// journal), nothing is acknowledged that is not on the disk.
func TestShrunkDeviceWritesFail(t *testing.T) {
	fs := loopfs.Mount(t, 64<<20, "")
	p, data := diskDaemon(t, fs)
	acked, code, body := postReceipts(t, p, "before", 20)
	if len(acked) != 20 {
		t.Fatalf("receipts on a sound disk: %d acknowledged, last answer %d %s", len(acked), code, body)
	}
	fs.Limit(1 << 20)
	during, code, body := postReceipts(t, p, "shrunk", 20)
	if code != 503 || !strings.Contains(body, `"code":3001`) {
		t.Errorf("a receipt on a shrunk device: %d %s, want 503 and code 3001", code, body)
	}
	h := wantDegraded(t, p, storage.FaultIO, storage.FaultReadOnly)
	stopAny(t, p)
	found := countFound(t, fs, data, append(acked, during...))
	t.Logf("shrunk device: reason %q (%s); acknowledged before %d, acknowledged after the shrink %d of 20, found %d",
		h.Reason, h.Error, len(acked), len(during), found)
}

// TestReadOnlyRemount: ext4 mounted errors=remount-ro meets an error and
// goes read-only under the daemon: receipts get 503 with code 3001, the
// reason is "read-only file system", and status advises checking the disk,
// not freeing space.
func TestReadOnlyRemount(t *testing.T) {
	fs := loopfs.Mount(t, 64<<20, "errors=remount-ro")
	p, data := diskDaemon(t, fs)
	acked, code, body := postReceipts(t, p, "before", 20)
	if len(acked) != 20 {
		t.Fatalf("receipts on a sound disk: %d acknowledged, last answer %d %s", len(acked), code, body)
	}
	fs.TriggerError()
	// ext4 remounts from a work queue, soon after the error.
	for deadline := time.Now().Add(60 * time.Second); !fs.ReadOnly(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the file system did not go read-only after the error")
		}
	}
	during, code, body := postReceipts(t, p, "ro", 5)
	if code != 503 || !strings.Contains(body, `"code":3001`) {
		t.Errorf("a receipt on a read-only file system: %d %s", code, body)
	}
	h := wantDegraded(t, p, storage.FaultReadOnly)
	st := runBinary(t, nil, "status", "--addr", p.Base)
	t.Logf("status: exit %d\n%s%s", st.code, st.stdout, st.stderr)
	if !strings.Contains(st.stdout, "DEGRADED") || (strings.Contains(strings.ToLower(st.stdout), "free disk space") || !strings.Contains(st.stdout, "went read-only")) {
		t.Errorf("status on a read-only file system advises:\n%s", st.stdout)
	}
	stopAny(t, p)
	found := countFound(t, fs, data, append(acked, during...))
	t.Logf("read-only: reason %q (%s); acknowledged before %d, acknowledged read-only %d of 5, found %d",
		h.Reason, h.Error, len(acked), len(during), found)
}
