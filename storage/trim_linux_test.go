package storage

import (
	"os"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// rssFileKiB is this process's RssFile: its mapped file pages.
func rssFileKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestTrimMapped: the store's pages read through the map leave the
// resident set when the mapping is trimmed, and read the same after.
func TestTrimMapped(t *testing.T) {
	s := snapshotStore(t)
	sum := func() (n int) {
		s.view(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketReceipts).ForEach(func(k, v []byte) error {
				for _, c := range v {
					n += int(c)
				}
				return nil
			})
		})
		return n
	}
	want := sum()
	mapped := rssFileKiB(t)
	s.trimMapped()
	trimmed := rssFileKiB(t)
	storeKiB := int(s.BackupSize() >> 10)
	if mapped-trimmed < storeKiB/2 {
		t.Errorf("RssFile %d KiB with the store (%d KiB) read, %d KiB after the trim: the store's pages stayed", mapped, storeKiB, trimmed)
	}
	if got := sum(); got != want {
		t.Errorf("after the trim the receipts read %d, before %d", got, want)
	}
}
