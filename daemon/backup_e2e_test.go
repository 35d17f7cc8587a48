package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"

	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/fulldisk"
	"github.com/shopbridge/shopbridge/internal/poll"
	"github.com/shopbridge/shopbridge/storage"
)

func backupStatus(t testing.TB, base string) shopbridge.BackupStatus {
	t.Helper()
	code, b, _ := do(t, "GET", base+"/admin/api/status", nil, nil)
	if code != 200 {
		t.Fatalf("status: %d %s", code, b)
	}
	var st struct {
		Backup shopbridge.BackupStatus `json:"backup"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Backup
}

// waitBackup polls the status until cond holds and returns it. The bound
// only ends a test that would otherwise hang; no figure is asserted.
func waitBackup(t testing.TB, p *proc, what string, cond func(shopbridge.BackupStatus) bool) shopbridge.BackupStatus {
	t.Helper()
	var st shopbridge.BackupStatus
	poll.Until(t, what, 2*time.Minute, func() bool {
		st = backupStatus(t, p.Base)
		return cond(st)
	})
	return st
}

func metric(t testing.TB, base, name string) float64 {
	t.Helper()
	_, b, _ := do(t, "GET", base+"/metrics", nil, nil)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("metric %s missing from /metrics", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func scheduledBackups(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "shopbridge-2*.db"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestScheduledBackupsRotate: with backup-every 1s and backup-keep 2, the
// backups appear, each checked and holding the store's receipts, and
// rotation keeps the newest two, removing an older scheduled backup found
// in the folder and nothing that is not named like one.
func TestScheduledBackupsRotate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bk")
	os.Mkdir(dir, 0o700)
	old := filepath.Join(dir, "shopbridge-20200101T000000Z.db")
	others := map[string]string{"notes.txt": "mine", "shopbridge-notes.db": "not a backup of ours"}
	for name, text := range others {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600)
	}
	os.WriteFile(old, []byte("an old backup"), 0o600)

	p := startDaemon(t, t.TempDir(), nil, "--backup-dir", dir, "--backup-every", "1s", "--backup-keep", "2")
	if st := backupStatus(t, p.Base); st.LastOKFile != old || !st.Stale {
		t.Errorf("at start: last backup %q stale %v; want the 2020 one found in the folder, stale", st.LastOKFile, st.Stale)
	}
	if code, b, _ := do(t, "POST", p.Base+"/api/v2/receipts", receiptBody("sched-1", "", "SELL", ""), nil); code != 200 {
		t.Fatalf("receipt: %d %s", code, b)
	}
	seen := map[string]bool{}
	waitBackup(t, p, "three scheduled backups", func(st shopbridge.BackupStatus) bool {
		if st.LastOKFile != "" && st.LastOKFile != old {
			seen[st.LastOKFile] = true
		}
		return len(seen) >= 3
	})
	st := backupStatus(t, p.Base)
	if st.Stale || st.LastError != "" || st.LastOKBytes <= 0 || st.NextAt == nil || st.Dir != dir || st.Every != "1s" {
		t.Errorf("status after good backups: %+v", st)
	}
	if v := metric(t, p.Base, "shopbridge_backup_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last success metric %v", v)
	}
	if v := metric(t, p.Base, "shopbridge_backup_interval_seconds"); v != 1 {
		t.Errorf("interval metric %v, want 1", v)
	}
	p.Stop(t) // no backup half done while the folder is read
	got := scheduledBackups(t, dir)
	if len(got) != 2 {
		t.Fatalf("backups in the folder: %v; want the newest 2 (keep 2)", got)
	}
	for _, f := range got {
		c, err := storage.CheckFileCounts(f)
		if err != nil {
			t.Errorf("backup %s fails its check: %v", f, err)
		} else if c.Receipts != 1 || c.Outbox != 1 {
			t.Errorf("backup %s holds %d receipts, %d queued; want 1, 1", f, c.Receipts, c.Outbox)
		}
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the oldest scheduled backup beyond keep is still there (%v)", err)
	}
	for name, text := range others {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != text {
			t.Errorf("%s was touched by rotation: %q %v", name, b, err)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// TestScheduledBackupFailures: a folder that is gone, a full disk and a
// read-only file system are each reported (status, metric, one log line
// however many slots fail), retried at the next slot, and leave the
// backups already there as they were; the full disk's backups resume once
// there is room.
func TestScheduledBackupFailures(t *testing.T) {
	check := func(t *testing.T, p *proc, want string) {
		t.Helper()
		waitBackup(t, p, "three failed slots", func(shopbridge.BackupStatus) bool {
			return metric(t, p.Base, "shopbridge_backup_failures_total") >= 3
		})
		st := backupStatus(t, p.Base)
		if !strings.Contains(st.LastError, want) || st.LastErrorAt == nil || !st.Stale {
			t.Errorf("status after failures: %+v; want last_error with %q, stale", st, want)
		}
		if metric(t, p.Base, "shopbridge_backup_last_failure_timestamp_seconds") == 0 {
			t.Error("last failure metric is 0")
		}
		if n := strings.Count(p.Logs(), "scheduled backup failed"); n != 1 {
			t.Errorf("%d log lines of the failure after 3 failed slots, want 1:\n%s", n, p.Logs())
		}
	}
	t.Run("gone", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "usb-stick")
		p := startDaemon(t, t.TempDir(), nil, "--backup-dir", dir, "--backup-every", "1s")
		check(t, p, "is not there")
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the named folder was made: %v", err)
		}
	})
	t.Run("full", func(t *testing.T) {
		dir := fulldisk.Mount(t, "8m")
		old := filepath.Join(dir, "shopbridge-20200101T000000Z.db")
		oldBytes := bytes.Repeat([]byte("old backup "), 1000)
		os.WriteFile(old, oldBytes, 0o600)
		filler := fulldisk.Fill(t, dir)
		p := startDaemon(t, t.TempDir(), nil, "--demo", "--backup-dir", dir, "--backup-every", "1s")
		check(t, p, "the backup disk is full")
		if b, err := os.ReadFile(old); err != nil || !bytes.Equal(b, oldBytes) {
			t.Errorf("the existing backup changed: %v", err)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 2 {
			t.Errorf("files on the full disk: %v; want the old backup and the filler only", m)
		}
		os.Remove(filler)
		st := waitBackup(t, p, "a backup once there is room", func(st shopbridge.BackupStatus) bool {
			return st.LastOKFile != "" && st.LastOKFile != old
		})
		if st.LastError != "" || st.Stale {
			t.Errorf("status after the disk had room again: %+v", st)
		}
		if !strings.Contains(p.Logs(), "scheduled backups work again") {
			t.Errorf("no log line of the recovery:\n%s", p.Logs())
		}
	})
	t.Run("read-only", func(t *testing.T) {
		dir := fulldisk.Mount(t, "8m")
		old := filepath.Join(dir, "shopbridge-20200101T000000Z.db")
		os.WriteFile(old, []byte("old"), 0o600)
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Skipf("skipped: cannot remount the tmpfs read-only: %v %s", err, out)
		}
		p := startDaemon(t, t.TempDir(), nil, "--backup-dir", dir, "--backup-every", "1s")
		check(t, p, "read-only file system")
		if b, _ := os.ReadFile(old); string(b) != "old" {
			t.Errorf("the existing backup changed: %q", b)
		}
	})
}

// TestBackupCmdCutStream: shopbridge backup fails, leaving no file, when
// the stream ends before its Content-Length (a daemon killed mid-way,
// played here by a server that sends half the body).
func TestBackupCmdCutStream(t *testing.T) {
	p := startDaemon(t, t.TempDir(), nil, "--demo")
	code, whole, hdr := do(t, "GET", p.Base+"/admin/api/backup", nil, nil)
	if code != 200 || hdr.Get("Content-Length") != strconv.Itoa(len(whole)) || hdr.Get("X-Shopbridge-Backup-Sha256") == "" {
		t.Fatalf("backup: %d, %d bytes, headers %v", code, len(whole), hdr)
	}
	cut := cutServer(t, whole, hdr)
	dst := filepath.Join(t.TempDir(), "backup.db")
	out, err := exec.Command(binary, "backup", "--addr", cut, dst).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cut short") {
		t.Errorf("backup of a cut stream: %v %s; want a failure saying it was cut short", err, out)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("%s exists after a cut stream", dst)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".shopbridge-backup-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// The same stream whole is saved and checked.
	out, err = exec.Command(binary, "backup", "--addr", p.Base, dst).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "checked") {
		t.Errorf("backup of the whole stream: %v %s", err, out)
	}
}

// TestRestore: restore refuses while the daemon runs and when the store
// holds unsent receipts the backup lacks; on a store that was lost it keeps
// what was there, installs the backup, and the daemon drains the backup's
// outbox to a real simulator; receipts delivered after the backup was taken
// are marked delivered from the store before and not sent again.
func TestRestore(t *testing.T) {
	sim, err := crmsim.Open(crmsim.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	restore := func(data string, args ...string) (int, string) {
		cmd := exec.Command(binary, append([]string{"restore", "--data", data}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	post := func(p *proc, id string) {
		t.Helper()
		if code, b, _ := do(t, "POST", p.Base+"/api/v2/receipts", receiptBody(id, "", "SELL", ""), nil); code != 200 {
			t.Fatalf("receipt %s: %d %s", id, code, b)
		}
	}

	t.Run("lost store drains", func(t *testing.T) {
		data := t.TempDir()
		p := startDaemon(t, data, nil) // standalone: receipts stay queued
		post(p, "lost-1")
		post(p, "lost-2")
		bk := filepath.Join(t.TempDir(), "b.db")
		if out, err := exec.Command(binary, "backup", "--addr", p.Base, bk).CombinedOutput(); err != nil {
			t.Fatalf("backup: %v %s", err, out)
		}
		post(p, "lost-3") // after the backup, not sent anywhere
		if code, out := restore(data, bk); code != 1 || !strings.Contains(out, "in use by a running shopbridge") || !strings.Contains(out, "systemctl stop shopbridge") {
			t.Errorf("restore on a running daemon: exit %d %s; want 1 saying how to stop it", code, out)
		}
		p.Stop(t)
		if code, out := restore(data, bk); code != 1 || !strings.Contains(out, "not yet sent upstream") {
			t.Errorf("restore over a store with an unsent receipt the backup lacks: exit %d %s; want 1", code, out)
		}
		// The store is lost: its bytes damaged.
		store := filepath.Join(data, storage.FileName)
		damaged := bytes.Repeat([]byte{0xde}, 64<<10)
		os.WriteFile(store, damaged, 0o600)
		code, out := restore(data, bk)
		if code != 0 || !strings.Contains(out, "2 in the outbox") || !strings.Contains(out, "could not be read") {
			t.Fatalf("restore: exit %d %s", code, out)
		}
		kept, _ := filepath.Glob(store + ".before-restore-*")
		if len(kept) != 1 {
			t.Fatalf("the store before: %v", kept)
		}
		if b, _ := os.ReadFile(kept[0]); !bytes.Equal(b, damaged) {
			t.Errorf("%s is not the store before", kept[0])
		}
		p = startDaemon(t, data, nil, "--upstream", sim.URL())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := sim.WaitReceipts(ctx, 2); err != nil {
			t.Fatalf("the restored outbox did not reach the simulator: %v", err)
		}
		waitOutboxEmpty(t, p)
		got := arrivals(sim, "lost-")
		if got["lost-1"] != 1 || got["lost-2"] != 1 || got["lost-3"] != 0 {
			t.Errorf("arrivals at the simulator: %v; want lost-1 and lost-2 once", got)
		}
		p.Stop(t)
	})

	t.Run("delivered since not sent again", func(t *testing.T) {
		data := t.TempDir()
		p := startDaemon(t, data, nil)
		post(p, "del-1")
		post(p, "del-2")
		bk := filepath.Join(t.TempDir(), "b.db")
		if out, err := exec.Command(binary, "backup", "--addr", p.Base, bk).CombinedOutput(); err != nil {
			t.Fatalf("backup: %v %s", err, out)
		}
		p.Stop(t)
		// Now the upstream gets them, and one more: all delivered.
		p = startDaemon(t, data, nil, "--upstream", sim.URL())
		post(p, "del-3")
		waitOutboxEmpty(t, p)
		p.Stop(t)
		code, out := restore(data, bk)
		if code != 0 || !strings.Contains(out, "2 receipts of the backup's outbox had been delivered") || !strings.Contains(out, "1 receipts of the store before (0 not yet sent upstream)") {
			t.Fatalf("restore: exit %d %s", code, out)
		}
		p = startDaemon(t, data, nil, "--upstream", sim.URL())
		if code, b, _ := do(t, "GET", p.Base+"/admin/api/status", nil, nil); code != 200 || !bytes.Contains(b, []byte(`"outbox": 0`)) || !bytes.Contains(b, []byte(`"receipts": 2`)) {
			t.Errorf("status after restore: %s; want 2 receipts, none in the outbox", b)
		}
		// A receipt after the restore goes out; the old ones did not go again.
		post(p, "del-4")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for arrivals(sim, "del-")["del-4"] == 0 {
			if _, err := sim.WaitReceipts(ctx, len(sim.Receipts())+1); err != nil {
				t.Fatalf("del-4 did not reach the simulator: %v", err)
			}
		}
		waitOutboxEmpty(t, p)
		if got := arrivals(sim, "del-"); got["del-1"] != 1 || got["del-2"] != 1 || got["del-3"] != 1 || got["del-4"] != 1 {
			t.Errorf("arrivals at the simulator: %v; want each once", got)
		}
	})
}

func arrivals(sim *crmsim.Server, prefix string) map[string]int {
	n := map[string]int{}
	for _, r := range sim.Receipts() {
		if strings.HasPrefix(r.EventID, prefix) {
			n[r.EventID]++
		}
	}
	return n
}

func waitOutboxEmpty(t testing.TB, p *proc) {
	t.Helper()
	poll.Until(t, "the outbox to drain", time.Minute, func() bool {
		_, b, _ := do(t, "GET", p.Base+"/admin/api/status", nil, nil)
		return bytes.Contains(b, []byte(`"outbox": 0`))
	})
}

// cutServer answers GET /admin/api/backup with whole's headers and half
// its bytes, then closes the connection.
func cutServer(t *testing.T, whole []byte, hdr map[string][]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(200)
		w.Write(whole[:len(whole)/2])
		panic(http.ErrAbortHandler) // the connection ends mid-body
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
