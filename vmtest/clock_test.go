package vmtest

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/api"
)

// TestGuestClockSkew: shopbridge in a guest whose clock the test sets at
// boot, syncing with the simulator on the host (whose clock is right): a
// year behind (a dead CMOS battery), then a year ahead, then right. The
// status measures each from the upstream's Date, the guest's log says it
// once, and the journal written under the wrong clocks is still there.
func TestGuestClockSkew(t *testing.T) {
	r := setup(t)
	dir := t.TempDir()
	sim := startSim(t, r.shopbridge)
	image := ext4Image(t, dir, 128<<20)
	disk, err := ServeDisk(image, filepath.Join(dir, "nbd.sock"), 1, func(err error) { t.Errorf("disk: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	p := newPowerCut(t, r, dir, disk, sim, rand.New(rand.NewPCG(1, 1)))

	status := func(g *guest) api.Status {
		t.Helper()
		req, _ := http.NewRequest("GET", g.admin+"/admin/api/status", nil)
		req.Header.Set("Authorization", "Bearer "+AdminToken)
		resp, err := p.httpc.Do(req)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var st api.Status
		if err := json.Unmarshal(b, &st); resp.StatusCode != 200 || err != nil {
			t.Fatalf("status: %d %v: %s", resp.StatusCode, err, b)
		}
		return st
	}
	const year = 365 * 24 * time.Hour
	kept := 0 // journal entries committed by the boots before
	for i, tc := range []struct {
		name  string
		clock time.Duration // the guest's clock minus the host's
		ok    bool
		line  string // in the guest's log, once
	}{
		{"a year behind", -year, false, "this PC's clock is wrong: 365 days behind the upstream"},
		{"a year ahead", year, false, "this PC's clock is wrong: 365 days ahead of the upstream"},
		{"right", 0, true, ""},
	} {
		p.clock = tc.clock
		g := p.boot(i+1, "http://"+GuestUpstreamAddr, nil)
		p.current = g
		// Measured, and the daemon past its first journal prune (10 s
		// after its start; both times by the guest's own clock), which
		// is also several polls (every 2 s) after the first answer: a
		// line logged per answer would show.
		var st api.Status
		for deadline := time.Now().Add(3 * time.Minute); ; {
			st = status(g)
			// Within a minute of the clock set: the guest's clock set to
			// the second, and a guest under TCG on a loaded host may lose
			// time while it runs.
			if c := st.Clock; c != nil && (c.Skew()+tc.clock).Abs() <= time.Minute && c.OK == tc.ok &&
				c.MeasuredAt.Sub(st.StartedAt) > 15*time.Second && st.Store.Journal > kept {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: clock %+v, started %v, journal %d (had %d)\n%s", tc.name, st.Clock, st.StartedAt, st.Store.Journal, kept, tail(g.vm.Console()))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s: guest clock %s, status clock %+v, journal %d entries (%d from the boots before)",
			tc.name, st.Clock.MeasuredAt.Format(time.RFC3339), *st.Clock, st.Store.Journal, kept)
		// Journal retention counts on the steady clock: a boot a year
		// ahead of the one before deletes none of its entries. (A count
		// read from the status is committed, so the power cut keeps it.)
		if st.Store.Journal < kept {
			t.Errorf("%s: %d journal entries after the first prune, %d before the boot: the clock jump deleted some", tc.name, st.Store.Journal, kept)
		}
		kept = st.Store.Journal
		console := g.vm.Console()
		if tc.line != "" && strings.Count(console, tc.line) != 1 {
			t.Errorf("%s: the guest's log has %q %d times, want once\n%s", tc.name, tc.line, strings.Count(console, tc.line), tail(console))
		}
		if n := strings.Count(console, "this PC's clock is wrong"); tc.ok && n != 0 {
			t.Errorf("%s: %d clock warnings with the clock right:\n%s", tc.name, n, tail(console))
		}
		if strings.Contains(console, "this PC's clock is right again") {
			t.Errorf("%s: a 'right again' line, but the clock did not change in this boot:\n%s", tc.name, tail(console))
		}
		disk.PowerOff()
		g.vm.Kill()
		if _, _, err := disk.Cut(); err != nil {
			t.Fatal(err)
		}
		p.current = nil
	}
}
