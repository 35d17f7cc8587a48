package api_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

// paddedReceipt is a well-formed receipt of about size bytes.
func paddedReceipt(id string, size int) string {
	return fmt.Sprintf(`{"id":%q,"data":{"type":"SELL","pad":%q}}`, id, strings.Repeat("x", size))
}

// TestSlowBackupDoesNotWedge (issue 16.1): a backup client that stops
// reading while registers post receipts big enough to grow the store past
// bbolt's mapping (a remap, which waits for every open read transaction).
// The store is opened without the mapping headroom (MmapSize -1), so the
// spool alone must keep receipts and /healthz answering. Every receipt
// posted while the client is stalled gets its 200 before the client reads
// on, and the backup then arrives whole (length and SHA-256) and is the
// consistent snapshot of the moment it was asked for.
func TestSlowBackupDoesNotWedge(t *testing.T) {
	path := filepath.Join(t.TempDir(), storage.FileName)
	st, err := storage.Open(path, storage.Options{MmapSize: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Close()
		if err := storage.CheckFile(path); err != nil {
			t.Errorf("store after the test: %v", err)
		}
	})
	const before, during, size = 40, 80, 600 << 10
	for i := range before {
		if _, err := st.AcceptReceipt(&shopbridge.Receipt{EventID: fmt.Sprintf("before-%d", i),
			Body: []byte(paddedReceipt(fmt.Sprintf("before-%d", i), size))}); err != nil {
			t.Fatal(err)
		}
	}
	startBytes := st.BackupSize()
	ts := newServer(t, api.Config{Store: st})

	// The slow client: the answer's headers, then nothing read until the
	// receipts are done. The store is far larger than the sockets' buffers.
	resp, err := http.Get(ts.URL + "/admin/api/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %s", resp.Status)
	}
	if resp.ContentLength <= 0 || resp.Header.Get(api.BackupSHA256Header) == "" {
		t.Fatalf("backup answer without length or checksum: Content-Length %d, headers %v", resp.ContentLength, resp.Header)
	}
	body := bufio.NewReaderSize(resp.Body, 1)
	if _, err := body.Peek(1); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	statuses := make([]int, during)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < during; i += 4 {
				id := "during-" + strconv.Itoa(i)
				r, err := http.Post(ts.URL+"/api/v2/receipts", "application/json", strings.NewReader(paddedReceipt(id, size)))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				statuses[i] = r.StatusCode
			}
		}()
	}
	wg.Wait()
	// Still before the client read on: the backup has not ended.
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("receipt during-%d posted while the backup was stalled: status %d, want 200", i, s)
		}
	}
	if a := ts.get(t, "/healthz"); a.status != http.StatusOK {
		t.Errorf("/healthz while the backup was stalled: %d %s", a.status, a.body)
	}
	// The systemd watchdog's store check: a read and the commit lock.
	if err := st.Ping(context.Background()); err != nil {
		t.Errorf("store ping while the backup was stalled: %v", err)
	}
	if now := st.BackupSize(); now < 2*startBytes {
		t.Fatalf("the store grew from %d to %d bytes only: no remap was needed, the test shows nothing", startBytes, now)
	}

	// Now the client reads on: the whole snapshot, as the headers promised.
	dst := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), body)
	f.Close()
	if err != nil || n != resp.ContentLength {
		t.Fatalf("backup body: %d of %d bytes, err %v", n, resp.ContentLength, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != resp.Header.Get(api.BackupSHA256Header) {
		t.Fatalf("backup SHA-256 %s, header says %s", got, resp.Header.Get(api.BackupSHA256Header))
	}
	counts, err := storage.CheckFileCounts(dst)
	if err != nil {
		t.Fatalf("the backup fails its check: %v", err)
	}
	if counts.Receipts != before || counts.Outbox != before {
		t.Errorf("backup holds %d receipts, %d queued; want the %d accepted before it was asked for", counts.Receipts, counts.Outbox, before)
	}
}

// TestBackupNoRoomForSpool: a data directory without room for the spool
// is refused before anything is written, with the sizes, and receipts go on.
func TestBackupNoRoomForSpool(t *testing.T) {
	dir := mountFull(t)
	st, err := storage.Open(filepath.Join(dir, storage.FileName), storage.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := newServer(t, api.Config{Store: st})
	a := ts.get(t, "/admin/api/backup")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(string(a.body), "no room in") {
		t.Errorf("backup on a data dir without room: %d %.200q; want 503 naming the room", a.status, a.body)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, storage.SpoolPrefix+"*")); len(m) != 0 {
		t.Errorf("spool files left: %v", m)
	}
	if a := ts.post(t, "/api/v2/receipts", paddedReceipt("after", 10)); a.status != http.StatusOK {
		t.Errorf("receipt after the refused backup: %d %s", a.status, a.body)
	}
}
