package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

// TestStoreAdviceByReason: the status line of a degraded store says what
// helps for its reason; only a full disk is told to free space.
func TestStoreAdviceByReason(t *testing.T) {
	now := time.Now()
	want := map[string]string{
		storage.FaultDiskFull:  "Free disk space",
		storage.FaultReadOnly:  "went read-only",
		storage.FaultIO:        "failed a write",
		storage.FaultWrite:     "daemon's log",
		storage.FaultDamaged:   "shopbridge restore FILE",
		storage.FaultReadFault: "failed to read",
	}
	for _, reason := range storage.Faults {
		var buf bytes.Buffer
		writeDaemonStatus(&buf, &api.Status{StoreHealth: storage.Health{State: storage.StateDegraded, Reason: reason, Since: now}}, now)
		line, _, _ := strings.Cut(buf.String(), "\n")
		if w, ok := want[reason]; !ok || !strings.Contains(line, w) {
			t.Errorf("%s: %q, want it to say %q", reason, line, want[reason])
		}
		if reason != storage.FaultDiskFull && strings.Contains(strings.ToLower(line), "free disk space") {
			t.Errorf("%s: the advice is to free disk space: %q", reason, line)
		}
	}
}
