package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
	"golang.org/x/sys/unix"
)

// The end-to-end test runs in a network namespace of its own: the daemon
// listens on an address there that is not loopback (10/8 is in the
// default allow list), so Prometheus gets in with the admin token and only
// with it — from loopback no token would be asked for. Everything stays in
// the namespace: the simulator, the daemon and Prometheus on its loopback.
// Ports can be fixed there: the namespace is new and only this test uses
// it.
const (
	nsAddr   = "10.250.18.1"
	promAddr = "127.0.0.1:9090"
	e2eShop  = "e2e-shop"
	e2eToken = "chain-admin-token-e2e"
)

// TestPrometheusEndToEnd: a real Prometheus with the shipped scrape config
// and rules scrapes a real daemon through the admin token; a receipt the
// simulator refuses is parked and ShopbridgeParkedReceipts goes pending;
// the simulator stops and ShopbridgeUpstreamOffline goes pending, then firing; the
// daemon stops and ShopbridgeDown fires. The rules' `for` are shortened and
// the intervals are 1 s, so it takes seconds, not minutes; every wait is a
// poll for a state, with a generous limit that only ends a hang.
func TestPrometheusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: starts Prometheus, the daemon and the simulator")
	}
	prometheus := need(t, "prometheus")
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create a network namespace (CI runs it as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: the ip tool (iproute2) is not installed")
	}
	bin := shopbridgeBinary(t)
	ns := newNetns(t)
	in := []string{"ip", "netns", "exec", ns}

	sim := startProc(t, in, bin, "crmsim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")
	api := sim.waitLine(t, simRE, 60*time.Second)
	// mDNS on: its multicast stays in the namespace, on lan0.
	d := startProc(t, in, bin, "run", "--listen", nsAddr+":0", "--data", t.TempDir(), "--mdns=true", "--mdns-iface", "lan0",
		"--config", emptyConfig(t), "--upstream", api, "--sync-interval", "1s", "--admin-token", e2eToken)
	target := d.waitLine(t, listenRE, 60*time.Second)

	// The shipped config as installed (step 2 of docs/monitoring.md), with
	// 1 s intervals, and a second job whose token is wrong.
	rules := read(t, rulesFile)
	rules = shortenFor(t, rules, "ShopbridgeUpstreamOffline", "10m", "10s")
	rules = shortenFor(t, rules, "ShopbridgeDown", "5m", "5s")
	dir := t.TempDir()
	cfgPath := scrapeConfigIn(t, dir, e2eToken,
		fmt.Sprintf("- targets: [%q]\n  labels:\n    shop: %s\n", target, e2eShop), rules,
		func(cfg string) string {
			cfg = replaceOnce(t, cfg, "scrape_interval: 30s", "scrape_interval: 1s")
			cfg = replaceOnce(t, cfg, "evaluation_interval: 30s", "evaluation_interval: 1s")
			cfg = replaceOnce(t, cfg, "scrape_timeout: 10s", "scrape_timeout: 1s")
			must(t, os.WriteFile(filepath.Join(dir, "wrong-token"), []byte("not-the-token\n"), 0o600))
			return cfg + fmt.Sprintf(`
  - job_name: wrong-token
    authorization:
      credentials_file: %s
    static_configs:
      - targets: [%q]
`, filepath.Join(dir, "wrong-token"), target)
		})
	prom := startProc(t, in, prometheus, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	pc := &promClient{t: t, http: &http.Client{Transport: &http.Transport{DialContext: dialIn(ns)}, Timeout: 10 * time.Second}, prom: prom}

	pc.waitFor("Prometheus ready", func() (bool, string) {
		resp, err := pc.http.Get("http://" + promAddr + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})

	// Both targets scraped once: the right token is let in, the wrong one
	// gets 401 — the daemon really checks the bearer Prometheus sends.
	pc.waitFor("the shopbridge target up and the wrong-token target refused with 401", func() (bool, string) {
		var r struct {
			ActiveTargets []struct {
				Labels     map[string]string `json:"labels"`
				Health     string            `json:"health"`
				LastError  string            `json:"lastError"`
				ScrapePool string            `json:"scrapePool"`
			} `json:"activeTargets"`
		}
		pc.get("/api/v1/targets", nil, &r)
		ok, bad := false, false
		for _, tg := range r.ActiveTargets {
			switch tg.ScrapePool {
			case "shopbridge":
				ok = tg.Health == "up" && tg.Labels["shop"] == e2eShop
			case "wrong-token":
				bad = tg.Health == "down" && strings.Contains(tg.LastError, "401")
			}
		}
		return ok && bad, fmt.Sprintf("%+v", r.ActiveTargets)
	})

	// Every alert of the rules file loaded and evaluated without error.
	wantAlerts := alertNames(rules)
	pc.waitFor("every rule loaded and evaluated", func() (bool, string) {
		var r struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		pc.get("/api/v1/rules", nil, &r)
		healthy := 0
		var states []string
		for _, g := range r.Groups {
			for _, rule := range g.Rules {
				if rule.LastError != "" {
					t.Fatalf("rule %s: %s", rule.Name, rule.LastError)
				}
				if rule.Health == "ok" {
					healthy++
				}
				states = append(states, rule.Name+"="+rule.Health)
			}
		}
		return healthy == len(wantAlerts), strings.Join(states, " ")
	})

	// The daemon online, its metrics stored with the shop label, and the
	// dashboards' shop list filled from them.
	pc.waitFor("shopbridge_upstream_up 1 for the shop", func() (bool, string) {
		v := pc.query(fmt.Sprintf(`shopbridge_upstream_up{job="shopbridge", shop=%q}`, e2eShop))
		return len(v) == 1 && v[0].Value[1] == "1", fmt.Sprint(v)
	})
	pc.waitFor("shopbridge_mdns_up 1: the daemon announces on lan0", func() (bool, string) {
		v := pc.query(fmt.Sprintf(`shopbridge_mdns_up{shop=%q} == 1 and shopbridge_mdns_enabled == 1`, e2eShop))
		return len(v) == 1, fmt.Sprint(v)
	})
	var shops []string
	pc.get("/api/v1/label/shop/values", url.Values{"match[]": {`up{job="shopbridge"}`}}, &shops)
	if len(shops) != 1 || shops[0] != e2eShop {
		t.Fatalf("label_values(up{job=\"shopbridge\"}, shop) = %v, want [%s]", shops, e2eShop)
	}
	// Every dashboard query runs on the real Prometheus. The shop's state
	// panels must show data: each is one number or word for one shop.
	for _, name := range dashboards {
		db := loadDashboard(t, name)
		for _, p := range db.Panels {
			for _, tg := range p.Targets {
				q := strings.NewReplacer("$shop", e2eShop, "$__rate_interval", "10s").Replace(tg.Expr)
				v := pc.query(q)
				if p.Type == "stat" && len(v) == 0 && !strings.Contains(q, "backup") && !strings.Contains(q, "> 0") {
					t.Errorf("%s: panel %q: %s gives no data for a running shop", name, p.Title, q)
				}
			}
		}
	}
	// The CRM refuses a receipt for good: it is parked, the gauge says so
	// and ShopbridgeParkedReceipts goes pending (its `for` is 1 minute: the
	// test does not wait for it to fire).
	ctl := &crmsim.Control{URL: sim.waitLine(t, simCtlRE, time.Second), Client: pc.http}
	must(t, ctl.SetFault(crmsim.Fault{Mode: crmsim.Fault400, Kind: crmsim.KindReceipts}))
	resp, err := pc.http.Post("http://"+target+"/api/v2/receipts", "application/json",
		strings.NewReader(`{"id":"e2e-parked-1","data":{"type":"SELL","extras":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /api/v2/receipts: %s", resp.Status)
	}
	pc.waitFor("shopbridge_parked_receipts 1 and ShopbridgeParkedReceipts pending", func() (bool, string) {
		v := pc.query(fmt.Sprintf(`shopbridge_parked_receipts{shop=%q}`, e2eShop))
		s := pc.alerts("ShopbridgeParkedReceipts")
		return len(v) == 1 && v[0].Value[1] == "1" && s == "pending", fmt.Sprintf("%v, alert state %q", v, s)
	})

	if firing := pc.alerts("ShopbridgeUpstreamOffline"); firing != "" {
		t.Fatalf("ShopbridgeUpstreamOffline is %s while the simulator runs", firing)
	}

	// The upstream goes away.
	killed := time.Now()
	sim.kill()
	pc.waitFor("ShopbridgeUpstreamOffline pending, then firing", func() (bool, string) {
		s := pc.alerts("ShopbridgeUpstreamOffline")
		return s == "firing", "state " + s
	})
	// It was pending before it fired: Prometheus records every evaluation of
	// a pending alert in the ALERTS series, so polling cannot miss it.
	pending := pc.query(fmt.Sprintf(`count_over_time(ALERTS{alertname="ShopbridgeUpstreamOffline", alertstate="pending", shop=%q}[5m])`, e2eShop))
	if len(pending) != 1 {
		t.Fatalf("ShopbridgeUpstreamOffline fired without being pending first: %v", pending)
	}
	t.Logf("ShopbridgeUpstreamOffline firing %.1fs after the simulator was killed, pending in %s evaluations before (for: 10s)",
		time.Since(killed).Seconds(), pending[0].Value[1])

	// The daemon goes away.
	d.kill()
	pc.waitFor("ShopbridgeDown firing", func() (bool, string) {
		s := pc.alerts("ShopbridgeDown")
		return s == "firing", "state " + s
	})
}

// shortenFor changes the `for` of one alert of a rules file.
func shortenFor(t *testing.T, rules, alert, from, to string) string {
	t.Helper()
	i := strings.Index(rules, "- alert: "+alert+"\n")
	if i < 0 {
		t.Fatalf("%s: no alert %s", rulesFile, alert)
	}
	rest := rules[i:]
	next := strings.Index(rest[1:], "- alert: ")
	if next < 0 {
		next = len(rest) - 1
	}
	block := rest[:next+1]
	if !strings.Contains(block, "for: "+from+"\n") {
		t.Fatalf("%s: alert %s has no `for: %s`: update this test", rulesFile, alert, from)
	}
	return rules[:i] + strings.Replace(block, "for: "+from+"\n", "for: "+to+"\n", 1) + rest[next+1:]
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%s: want %q once: update this test", scrapeFile, old)
	}
	return strings.Replace(s, old, new, 1)
}

// newNetns creates a namespace with loopback up and nsAddr on lan0, deleted
// on cleanup.
func newNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("sb-monitoring-%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("cleanup: ip netns del %s: %v %s", name, err, out)
		}
	})
	ip("-n", name, "link", "set", "lo", "up")
	// A LAN interface of the namespace's own (a veth pair with both ends
	// in it), so the daemon's mDNS has somewhere to announce and
	// shopbridge_mdns_up can be 1.
	ip("-n", name, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
	ip("-n", name, "link", "set", "lan0", "multicast", "on", "up")
	ip("-n", name, "link", "set", "lan1", "up")
	ip("-n", name, "addr", "add", nsAddr+"/24", "dev", "lan0")
	return name
}

// dialIn dials inside the named namespace: a goroutine locked to its own
// thread enters the namespace and makes the socket there. It never unlocks,
// so the thread ends with the goroutine and no other goroutine ever runs in
// the namespace.
func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			f, err := os.Open(filepath.Join("/run/netns", ns))
			if err != nil {
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// promClient asks the Prometheus HTTP API.
type promClient struct {
	t    *testing.T
	http *http.Client
	prom *proc
}

func (c *promClient) get(path string, q url.Values, into any) {
	c.t.Helper()
	u := "http://" + promAddr + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := c.http.Get(u)
	if err != nil {
		c.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		c.t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(r.Data, into); err != nil {
		c.t.Fatalf("GET %s: %v in %s", u, err, r.Data)
	}
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query; a PromQL error fails the test.
func (c *promClient) query(q string) []sample {
	c.t.Helper()
	var r struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	c.get("/api/v1/query", url.Values{"query": {q}}, &r)
	if r.ResultType == "scalar" {
		return nil
	}
	var v []sample
	if err := json.Unmarshal(r.Result, &v); err != nil {
		c.t.Fatalf("query %s: %v in %s", q, err, r.Result)
	}
	return v
}

// alerts returns the state of the named alert for the test's shop
// ("pending", "firing", or "" when inactive).
func (c *promClient) alerts(name string) string {
	c.t.Helper()
	var r struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	c.get("/api/v1/alerts", nil, &r)
	for _, a := range r.Alerts {
		if a.Labels["alertname"] == name && a.Labels["shop"] == e2eShop {
			return a.State
		}
	}
	return ""
}

// waitFor polls cond until it holds. The limit only ends a hang (a state
// that never comes); it is far above the few seconds each step takes.
func (c *promClient) waitFor(what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting for %s: gave up after 3 minutes; last: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
