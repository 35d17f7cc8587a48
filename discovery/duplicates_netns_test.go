package discovery

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
)

// TestNetnsDuplicateAppliances: three real daemons on one switched LAN
// (network namespaces), A and B given the same upstream URL and token, C
// the same URL with another token. A and B each warn about the other (log
// and status, with its address), C warns about nobody after it has seen
// both; and A's TXT carries up=, C's a different one.
func TestNetnsDuplicateAppliances(t *testing.T) {
	needNetns(t)
	bin := shopbridgeBinary(t)
	t.Parallel()
	sw := newNS(t, "console-sw")
	sw.bridge(t)
	type node struct {
		name, addr, token string
		ns                *netns
		p                 *proc
	}
	nodes := []*node{{name: "shop A", addr: "10.77.5.1", token: "tok-shop-1"}, {name: "shop B", addr: "10.77.5.2", token: "tok-shop-1"},
		{name: "shop C", addr: "10.77.5.3", token: "tok-shop-2"}}
	for i, n := range nodes {
		n.ns = newNS(t, "console-"+string(rune('a'+i)))
		plug(t, n.ns, "eth0", sw)
		n.ns.addr(t, "eth0", n.addr+"/24")
	}
	for _, n := range nodes {
		data := t.TempDir()
		// The upstream is an address nobody answers on: the identity is
		// the URL and token, whatever the upstream says.
		n.p = n.ns.startCmd(t, nil, "sh", "-c", "exec "+bin+` run --config /dev/null --listen :8480 --data `+data+
			` --mdns=true --name "`+n.name+`" --upstream http://10.77.5.250:8481 --upstream-token `+n.token+` --sync-interval 1h 2>&1`)
	}
	for _, n := range nodes {
		n.p.waitLine(0, 20*time.Second, n.name+" listening", func(l string) bool { return strings.Contains(l, "msg=listening") })
	}
	type statusDoc struct {
		MDNS       Status                 `json:"mdns"`
		Duplicates []shopbridge.Duplicate `json:"duplicates"`
	}
	status := func(n *node) statusDoc {
		get := n.ns.start(t, "get", "GET_URL=http://127.0.0.1:8480/admin/api/status")
		line, _ := get.waitLine(0, 10*time.Second, "status body", func(l string) bool { return strings.HasPrefix(l, "BODY ") })
		var st statusDoc
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "BODY ")), &st); err != nil {
			t.Fatalf("%s admin/api/status: %v: %s", n.name, err, line)
		}
		return st
	}
	// Wait until each has browsed and seen both others.
	sts := map[string]statusDoc{}
	deadline := time.Now().Add(90 * time.Second)
	for _, n := range nodes {
		for {
			st := status(n)
			if st.MDNS.Others >= 2 && (n.name == "shop C" || len(st.Duplicates) > 0) {
				sts[n.name] = st
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: within 90 s no duplicate check saw both others: %+v", n.name, st)
			}
			time.Sleep(500 * time.Millisecond) // polling another process's state
		}
	}
	for _, pair := range [][2]*node{{nodes[0], nodes[1]}, {nodes[1], nodes[0]}} {
		me, other := pair[0], pair[1]
		st := sts[me.name]
		if len(st.Duplicates) != 1 || st.Duplicates[0].Name != other.name || st.Duplicates[0].Reason != shopbridge.DuplicateUpstream ||
			!slices.Contains(st.Duplicates[0].Addresses, other.addr+":8480") {
			t.Errorf("%s status duplicates = %+v, want %s at %s:8480 (same_upstream)", me.name, st.Duplicates, other.name, other.addr)
		}
		line, _ := me.p.waitLine(0, 10*time.Second, me.name+" warning about "+other.name, func(l string) bool {
			return strings.Contains(l, "level=WARN") && strings.Contains(l, "serves the same shop") && strings.Contains(l, `other="`+other.name+`"`)
		})
		t.Logf("%s log: %s", me.name, line)
		if !strings.Contains(line, other.addr+":8480") || !strings.Contains(line, me.addr+":8480") || !strings.Contains(line, "one appliance per shop") {
			t.Errorf("%s warning lacks both addresses or the remedy: %s", me.name, line)
		}
	}
	c := sts["shop C"]
	t.Logf("shop C: others seen %d, duplicates %+v", c.MDNS.Others, c.Duplicates)
	if len(c.Duplicates) != 0 {
		t.Errorf("shop C (another token) lists duplicates %+v", c.Duplicates)
	}
	nodes[2].p.mu.Lock()
	for _, l := range nodes[2].p.lines {
		if strings.Contains(l, "serves the same shop") {
			t.Errorf("shop C warned: %s", l)
		}
	}
	nodes[2].p.mu.Unlock()

	// What a register sees: up= on each, equal for A and B only.
	reg := newNS(t, "console-reg")
	plug(t, reg, "eth0", sw)
	reg.addr(t, "eth0", "10.77.5.9/24")
	found := reg.browseUntil(t, 15*time.Second, "all three", func(f []Instance) bool { return len(f) == 3 })
	ups := map[string]string{}
	for _, in := range found {
		ups[in.Name] = in.TXT["up"]
	}
	if ups["shop A"] == "" || ups["shop A"] != ups["shop B"] || ups["shop C"] == "" || ups["shop C"] == ups["shop A"] {
		t.Errorf("TXT up= by instance: %v", ups)
	}
	if ups["shop A"] != UpstreamID("http://10.77.5.250:8481", "tok-shop-1") || strings.Contains(ups["shop A"], "tok") {
		t.Errorf("TXT up= of shop A is %q, want UpstreamID(url, token) = %q", ups["shop A"], UpstreamID("http://10.77.5.250:8481", "tok-shop-1"))
	}
}
