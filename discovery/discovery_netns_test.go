package discovery

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNetnsRegisterFindsDaemon: the daemon in one namespace, a register in
// another, nothing configured: the register finds it, then walks hello →
// list → bill → receipt against the discovered address.
func TestNetnsRegisterFindsDaemon(t *testing.T) {
	needNetns(t)
	t.Parallel()
	d, r := newNS(t, "d"), newNS(t, "r")
	link(t, d, "eth0", r, "eth0")
	d.addr(t, "eth0", "10.71.1.1/24")
	r.addr(t, "eth0", "10.71.1.2/24")

	start := time.Now()
	ann := d.start(t, "announce", "ANNOUNCE_NAME=shopbridge on Касса 1", "ANNOUNCE_ID=3f2a9c1e-0001")
	st, _ := ann.waitStatus(0, 10*time.Second, "state announcing", func(s Status) bool { return s.State == "announcing" })
	if st.Host != "shopbridge-3f2a9c1e-0001.local." {
		t.Errorf("host = %q, want our own name from the instance id", st.Host)
	}
	t.Logf("MEASURE daemon start → announcing: %v", time.Since(start).Round(10*time.Millisecond))
	found := r.browseUntil(t, 15*time.Second, "the daemon", func(f []Instance) bool { return len(f) == 1 && f[0].URL != "" })
	t.Logf("MEASURE daemon start → first successful browse+hello (500 ms browse windows): %v", time.Since(start).Round(10*time.Millisecond))
	in := found[0]
	if in.Name != "shopbridge on Касса 1" {
		t.Errorf("name = %q", in.Name)
	}
	if got := v4s(in); !slices.Equal(got, []string{"10.71.1.1"}) {
		t.Errorf("IPv4 offered = %v, want [10.71.1.1]", got)
	}
	want := map[string]string{"proto": "0.1.0", "path": "/api/v2", "id": "3f2a9c1e-0001", "ver": "test"}
	for k, v := range want {
		if in.TXT[k] != v {
			t.Errorf("TXT %s = %q, want %q (all: %v)", k, in.TXT[k], v, in.TXT)
		}
	}
	if in.Protocol != "0.1.0" || in.System != "netns-test" || in.Err != "" {
		t.Errorf("hello: protocol %q system %q err %q", in.Protocol, in.System, in.Err)
	}
	_, flows := r.browse(t, 2*time.Second, true)
	if len(flows) != 1 || !strings.HasPrefix(flows[0], "FLOW ok") {
		t.Fatalf("register flow against the discovered address: %v", flows)
	}
}

// TestNetnsEachInterfaceOffersItsOwnAddress: two LAN interfaces on the
// daemon's side, each leading to a different namespace; each side is offered
// only the address it can reach.
func TestNetnsEachInterfaceOffersItsOwnAddress(t *testing.T) {
	needNetns(t)
	t.Parallel()
	d, r1, r2 := newNS(t, "d"), newNS(t, "r1"), newNS(t, "r2")
	link(t, d, "lan1", r1, "eth0")
	link(t, d, "lan2", r2, "eth0")
	d.addr(t, "lan1", "10.72.1.1/24")
	d.addr(t, "lan2", "10.72.2.1/24")
	r1.addr(t, "eth0", "10.72.1.2/24")
	r2.addr(t, "eth0", "10.72.2.2/24")
	ann := d.start(t, "announce", "ANNOUNCE_NAME=two-lans", "ANNOUNCE_ID=two-lans-id")
	st, _ := ann.waitStatus(0, 10*time.Second, "announcing on both", func(s Status) bool { return s.State == "announcing" && len(s.Interfaces) == 2 })
	addrsOf := map[string][]string{}
	for _, i := range st.Interfaces {
		addrsOf[i.Name] = i.Addrs
	}
	for _, c := range []struct {
		ns        *netns
		want, not string
		other     []string // every address of the other interface, IPv6 link-local included
	}{{r1, "10.72.1.1", "10.72.2.1", addrsOf["lan2"]}, {r2, "10.72.2.1", "10.72.1.1", addrsOf["lan1"]}} {
		found := c.ns.browseUntil(t, 15*time.Second, "the daemon", func(f []Instance) bool { return len(f) == 1 && f[0].URL != "" })
		if got := v4s(found[0]); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s offered IPv4 %v, want only %s", c.ns.name, got, c.want)
		}
		for _, ip := range append([]string{c.not}, c.other...) {
			if hasIP(found[0], ip) {
				t.Errorf("%s was offered %s, the other interface's address", c.ns.name, ip)
			}
		}
		for _, ip := range found[0].Addrs {
			if ip.To4() == nil && !ip.IsLinkLocalUnicast() {
				t.Errorf("%s offered unexpected IPv6 %v", c.ns.name, ip)
			}
		}
	}
}

// TestNetnsSameNameTwoDaemons: two daemons in one LAN with the same --name
// both stay findable, under distinct instance names.
func TestNetnsSameNameTwoDaemons(t *testing.T) {
	needNetns(t)
	t.Parallel()
	sw := newNS(t, "sw")
	sw.bridge(t)
	d1, d2, r := newNS(t, "d1"), newNS(t, "d2"), newNS(t, "r")
	plug(t, d1, "eth0", sw)
	plug(t, d2, "eth0", sw)
	plug(t, r, "eth0", sw)
	d1.addr(t, "eth0", "10.73.0.1/24")
	d2.addr(t, "eth0", "10.73.0.2/24")
	r.addr(t, "eth0", "10.73.0.9/24")
	a1 := d1.start(t, "announce", "ANNOUNCE_NAME=shopbridge on till", "ANNOUNCE_ID=aaaa-1111")
	a2 := d2.start(t, "announce", "ANNOUNCE_NAME=shopbridge on till", "ANNOUNCE_ID=bbbb-2222")
	a1.waitStatus(0, 10*time.Second, "d1 announcing", func(s Status) bool { return s.State == "announcing" })
	a2.waitStatus(0, 10*time.Second, "d2 announcing", func(s Status) bool { return s.State == "announcing" })
	found := r.browseUntil(t, 20*time.Second, "two distinct instances that both answer hello", func(f []Instance) bool {
		return len(f) == 2 && f[0].Name != f[1].Name && f[0].URL != "" && f[1].URL != "" &&
			f[0].TXT["id"] != f[1].TXT["id"]
	})
	names := []string{found[0].Name, found[1].Name}
	t.Logf("instances: %q", names)
	if !slices.Contains(names, "shopbridge on till") || !slices.Contains(names, "shopbridge on till (2)") {
		t.Errorf("names = %q, want the configured one and one with (2)", names)
	}
	// Still both there a little later: no flapping back to one name.
	time.Sleep(2 * time.Second)
	r.browseUntil(t, 10*time.Second, "still two instances", func(f []Instance) bool { return len(f) == 2 && f[0].Name != f[1].Name })
}

// TestNetnsPort5353Taken: another responder holding UDP 5353 exclusively is
// reported in the status and retried; announcing starts once it is gone.
func TestNetnsPort5353Taken(t *testing.T) {
	needNetns(t)
	t.Parallel()
	d, r := newNS(t, "d"), newNS(t, "r")
	link(t, d, "eth0", r, "eth0")
	d.addr(t, "eth0", "10.74.1.1/24")
	r.addr(t, "eth0", "10.74.1.2/24")
	blocker := d.start(t, "block5353")
	blocker.waitLine(0, 10*time.Second, "BOUND", func(l string) bool { return l == "BOUND" })
	ann := d.start(t, "announce", "ANNOUNCE_NAME=blocked", "ANNOUNCE_ID=blocked-id")
	st, i := ann.waitStatus(0, 10*time.Second, "state error", func(s Status) bool { return s.State == "error" })
	if !strings.Contains(st.Error, "5353") {
		t.Errorf("error %q does not name UDP 5353", st.Error)
	}
	blocker.signal(syscall.SIGKILL)
	blocker.wait(t, 5*time.Second)
	ann.waitStatus(i, 15*time.Second, "announcing after the port was freed", func(s Status) bool { return s.State == "announcing" })
	r.browseUntil(t, 10*time.Second, "the daemon", func(f []Instance) bool { return len(f) == 1 && f[0].URL != "" })
}

// TestNetnsAddressChange: after the daemon's address changes, a fresh browse
// sees the new address, without a restart.
func TestNetnsAddressChange(t *testing.T) {
	needNetns(t)
	t.Parallel()
	d, r := newNS(t, "d"), newNS(t, "r")
	link(t, d, "eth0", r, "eth0")
	d.addr(t, "eth0", "10.76.1.1/24")
	r.addr(t, "eth0", "10.76.1.2/24")
	ann := d.start(t, "announce", "ANNOUNCE_NAME=moving", "ANNOUNCE_ID=moving-id")
	_, i := ann.waitStatus(0, 10*time.Second, "announcing", func(s Status) bool { return s.State == "announcing" })
	r.browseUntil(t, 10*time.Second, "the daemon at 10.76.1.1", func(f []Instance) bool { return len(f) == 1 && hasIP(f[0], "10.76.1.1") })

	// Keep the new address when the old primary goes, as a DHCP renumbering does.
	run(t, "ip", "netns", "exec", d.name, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1")
	changed := time.Now()
	run(t, "ip", "-n", d.name, "addr", "add", "10.76.1.7/24", "dev", "eth0")
	run(t, "ip", "-n", d.name, "addr", "del", "10.76.1.1/24", "dev", "eth0")
	ann.waitStatus(i, 10*time.Second, "status with the new address", func(s Status) bool {
		return len(s.Interfaces) == 1 && slices.Contains(s.Interfaces[0].Addrs, "10.76.1.7")
	})
	found := r.browseUntil(t, 10*time.Second, "the new address 10.76.1.7 only", func(f []Instance) bool {
		return len(f) == 1 && slices.Equal(v4s(f[0]), []string{"10.76.1.7"}) && f[0].URL != ""
	})
	t.Logf("MEASURE address change → new address offered to a fresh browse: %v (%v)", time.Since(changed).Round(10*time.Millisecond), ipStrings(found[0]))
}

// TestNetnsNewInterface: an interface that comes up after the start gets
// its own registration (a server joins multicast groups only when it
// starts), and the first interface keeps offering the service.
func TestNetnsNewInterface(t *testing.T) {
	needNetns(t)
	t.Parallel()
	d, r1, r2 := newNS(t, "d"), newNS(t, "r1"), newNS(t, "r2")
	link(t, d, "lan1", r1, "eth0")
	d.addr(t, "lan1", "10.78.1.1/24")
	r1.addr(t, "eth0", "10.78.1.2/24")
	ann := d.start(t, "announce", "ANNOUNCE_NAME=growing", "ANNOUNCE_ID=growing-id")
	_, i := ann.waitStatus(0, 10*time.Second, "announcing on lan1", func(s Status) bool { return s.State == "announcing" })
	r1.browseUntil(t, 10*time.Second, "the daemon on lan1", func(f []Instance) bool { return len(f) == 1 && f[0].URL != "" })

	added := time.Now()
	link(t, d, "lan2", r2, "eth0")
	d.addr(t, "lan2", "10.78.2.1/24")
	r2.addr(t, "eth0", "10.78.2.2/24")
	ann.waitStatus(i, 10*time.Second, "announcing on both", func(s Status) bool { return s.State == "announcing" && len(s.Interfaces) == 2 })
	found := r2.browseUntil(t, 10*time.Second, "the daemon on the new interface", func(f []Instance) bool { return len(f) == 1 && f[0].URL != "" })
	t.Logf("MEASURE new interface → found there: %v", time.Since(added).Round(10*time.Millisecond))
	if got := v4s(found[0]); !slices.Equal(got, []string{"10.78.2.1"}) {
		t.Errorf("new interface offers %v, want [10.78.2.1]", got)
	}
	found = r1.browseUntil(t, 10*time.Second, "the daemon still on lan1", func(f []Instance) bool { return len(f) == 1 && f[0].URL != "" })
	if got := v4s(found[0]); !slices.Equal(got, []string{"10.78.1.1"}) {
		t.Errorf("lan1 offers %v after the new interface, want [10.78.1.1]", got)
	}
}
