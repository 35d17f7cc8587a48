package daemon

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/shopbridge/shopbridge"
)

// TestDaemonMetrics: the daemon's own families on /metrics: the build, the
// start time, a receipt the upstream refused counted as parked, and mDNS
// off as configured.
func TestDaemonMetrics(t *testing.T) {
	d := openDaemon(t)
	base := "http://" + d.Addr()
	resp, err := http.Post(base+"/api/v2/receipts", "application/json",
		strings.NewReader(`{"id":"metrics-parked-1","data":{"type":"SELL","extras":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST receipt: %s", resp.Status)
	}
	if err := d.Store.Park("metrics-parked-1", "400 refused"); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		"# TYPE shopbridge_build_info gauge\n",
		`shopbridge_build_info{version="` + shopbridge.Version + `",commit="` + shopbridge.Commit + `",goversion="`,
		"# TYPE shopbridge_parked_receipts gauge\nshopbridge_parked_receipts 1\n",
		"shopbridge_mdns_enabled 0\n",
		"shopbridge_mdns_up 0\n",
		"shopbridge_outbox_receipts 0\n",
		"shopbridge_start_time_seconds " + strconv.FormatFloat(float64(d.started.UnixNano())/1e9, 'f', -1, 64) + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestMDNSMetrics: configured on but not (yet) announcing is 1 and 0, the
// state ShopbridgeMDNSDown looks for; configured off is 0 and 0, which it
// leaves alone.
func TestMDNSMetrics(t *testing.T) {
	d := openDaemon(t)
	for _, c := range []struct {
		name        string
		on          bool
		enabled, up string
	}{
		{"on, no announcer yet", true, "1", "0"},
		{"off", false, "0", "0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			(&daemonMetrics{store: d.Store, mdns: c.on}).WriteMetrics(&b)
			for _, want := range []string{"shopbridge_mdns_enabled " + c.enabled + "\n", "shopbridge_mdns_up " + c.up + "\n"} {
				if !strings.Contains(b.String(), want) {
					t.Errorf("lacks %q in:\n%s", want, b.String())
				}
			}
		})
	}
}
