package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestLANRules: the real daemon wires the names of this machine into the
// operator endpoints' Host check (its mDNS host name, --name as .local,
// --admin-hosts) and refuses a web page's receipt (docs/security.md).
func TestLANRules(t *testing.T) {
	p := startDaemon(t, t.TempDir(), nil, "--name", "Shop 1", "--admin-hosts", "kassa.lan")
	call := func(method, path, host string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.Base+path, strings.NewReader(string(receiptBody("ev-lan-1", "", "SELL", ""))))
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := call("GET", "/admin/api/status", "")
	var st struct {
		InstanceID string `json:"instance_id"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.InstanceID == "" {
		t.Fatalf("status: %d %s", code, body)
	}
	port := p.Base[strings.LastIndexByte(p.Base, ':'):]
	for _, host := range []string{"shopbridge-" + st.InstanceID + ".local" + port, "shop-1.local", "KASSA.LAN" + port} {
		if code, body := call("GET", "/admin/api/status", host); code != 200 {
			t.Errorf("status under %s: %d %.200s", host, code, body)
		}
	}
	for _, ep := range [][2]string{{"GET", "/admin/api/status"}, {"GET", "/admin/api/journal"}, {"POST", "/admin/api/outbox/ev-1/retry"},
		{"GET", "/admin/api/backup"}, {"GET", "/metrics"}} {
		if code, body := call(ep[0], ep[1], "rebind.evil.example"+port); code != 403 || !strings.Contains(body, `"subject":"Host"`) {
			t.Errorf("%s %s under rebind.evil.example: %d %.200s", ep[0], ep[1], code, body)
		}
	}
	if code, body := call("POST", "/api/v2/receipts", "", "Content-Type", "text/plain", "Origin", "http://evil.example",
		"Sec-Fetch-Site", "cross-site"); code != 403 || !strings.Contains(body, `"code":1003`) {
		t.Errorf("receipt from a web page: %d %s", code, body)
	}
	if code, body := call("POST", "/api/v2/receipts", "", "Content-Type", "application/json"); code != 200 {
		t.Errorf("register's receipt: %d %s", code, body)
	}
}
