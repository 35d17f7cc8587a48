package discovery

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shopbridge/shopbridge"
)

func TestEscapeLabelMatchesWire(t *testing.T) {
	for _, name := range []string{
		"shopbridge on vm", "shopbridge on Касса 1 (2)", `a.b\c;d@e"f'g`, "tab\there", "plain",
	} {
		t.Run(name, func(t *testing.T) {
			// Pack a name built from the escaped label, unpack it as a
			// querier's packet would arrive: the strings must be equal, or
			// the responder would not recognise lookups of this instance.
			fqdn := escapeLabel(name) + "." + serviceType + "." + domain
			m := new(dns.Msg)
			m.SetQuestion(fqdn, dns.TypeSRV)
			buf, err := m.Pack()
			if err != nil {
				t.Fatalf("pack %q: %v", fqdn, err)
			}
			var back dns.Msg
			if err := back.Unpack(buf); err != nil {
				t.Fatal(err)
			}
			if got := back.Question[0].Name; got != fqdn {
				t.Errorf("wire name %q, escaped %q", got, fqdn)
			}
			inst, ok := splitInstance(back.Question[0].Name)
			if !ok || inst != name {
				t.Errorf("splitInstance = %q, %v; want %q", inst, ok, name)
			}
		})
	}
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{"shopbridge on vm", "Касса (2)", `\\`, "\\065", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeLabel(escapeLabel(s)); got != s {
			t.Fatalf("unescape(escape(%q)) = %q", s, got)
		}
		_ = unescapeLabel(s) // never panics on arbitrary wire text
	})
}

func TestCandidateName(t *testing.T) {
	long := strings.Repeat("я", 40) // 80 bytes
	tests := []struct {
		name string
		base string
		n    int
		want string
	}{
		{"first is the name", "shopbridge on vm", 1, "shopbridge on vm"},
		{"second gets (2)", "shopbridge on vm", 2, "shopbridge on vm (2)"},
		{"long is cut on a rune", long, 1, strings.Repeat("я", 31)},
		{"long with suffix fits", long, 12, strings.Repeat("я", 29) + " (12)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := candidateName(tt.base, tt.n)
			if got != tt.want || len(got) > maxLabel {
				t.Errorf("candidateName(%q, %d) = %q (%d bytes), want %q", tt.base, tt.n, got, len(got), tt.want)
			}
		})
	}
}

func TestHostLabel(t *testing.T) {
	tests := []struct{ id, want string }{
		{"84d16627d776951e", "shopbridge-84d16627d776951e"},
		{"3F2A-9C1E_0001", "shopbridge-3f2a-9c1e-0001"},
		{"Ёж..id", "shopbridge-id"},
		{strings.Repeat("a", 80), "shopbridge-" + strings.Repeat("a", 52)},
	}
	for _, tt := range tests {
		if got := hostLabel(tt.id); got != tt.want {
			t.Errorf("hostLabel(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestParseTXT(t *testing.T) {
	got := parseTXT([]string{"proto=0.1.0", "PATH=/api/v2", "proto=9", "flag", "=x", "ver=a=b"})
	want := map[string]string{"proto": "0.1.0", "path": "/api/v2", "flag": "", "ver": "a=b"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	cfg := Config{InstanceID: "abc", Version: "1.2.3"}
	if got := txtRecords(cfg); !slices.Equal(got, []string{"proto=" + shopbridge.ProtocolVersion, "path=/api/v2", "id=abc", "ver=1.2.3"}) {
		t.Errorf("txtRecords = %q", got)
	}
	// With HTTPS, its port and certificate fingerprint, for a register or
	// installer to pin; every string within the 255 bytes of a TXT string.
	fp := shopbridge.TLSFingerprint([]byte("a certificate"))
	cfg.HTTPSPort, cfg.TLSFingerprint = 8443, fp
	got = parseTXT(txtRecords(cfg))
	if got["https_port"] != "8443" || got["tls_sha256"] != fp || got["id"] != "abc" {
		t.Errorf("TXT with HTTPS = %v", got)
	}
	for _, s := range txtRecords(cfg) {
		if len(s) > 255 {
			t.Errorf("TXT string of %d bytes: %q", len(s), s)
		}
	}
}

func TestIsVirtualName(t *testing.T) {
	for name, want := range map[string]bool{
		"docker0": true, "br-1a2b": true, "virbr0": true, "vmnet8": true, "vboxnet0": true, "tun0": true,
		"tap3": true, "wg0": true, "tailscale0": true, "zt5u4y": true, "utun2": true,
		"eth0": false, "enp3s0": false, "wlan0": false, "veth12ab": false, "Ethernet": false, "bridge0": false,
	} {
		if got := isVirtualName(name); got != want {
			t.Errorf("isVirtualName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestChooseIfacesNamedProblems(t *testing.T) {
	// Only lists interfaces; sends nothing.
	chosen, problems, err := chooseIfaces([]string{"no-such-if0", "lo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(chosen) != 0 {
		t.Errorf("chosen %v", chosen)
	}
	if len(problems) != 2 || !strings.Contains(problems[0], `"no-such-if0": no such interface`) || !strings.Contains(problems[1], `"lo"`) {
		t.Errorf("problems = %q", problems)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     Config
		subject string
	}{
		{"empty name", Config{Instance: "  ", Port: 8480}, "--name"},
		{"no port", Config{Instance: "x"}, "port"},
		{"port too big", Config{Instance: "x", Port: 70000}, "port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := New(tt.cfg).Open(context.Background())
			if shopbridge.ErrorKind(err) != shopbridge.EINVALID || shopbridge.ErrorSubject(err) != tt.subject {
				t.Errorf("Open = %v, want an invalid error about %s", err, tt.subject)
			}
		})
	}
}

// TestStatusLifecycle uses an interface that does not exist, so nothing is
// ever sent on this machine's network: the problem shows in Status, and
// Close turns the announcer off.
func TestStatusLifecycle(t *testing.T) {
	a := New(Config{Instance: "x", InstanceID: "id-1", Port: 8480, Ifaces: []string{"no-such-if0"}})
	if s := a.Status(); s.State != "off" || s.Host != "shopbridge-id-1.local." {
		t.Fatalf("before Open: %+v", s)
	}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Open(context.Background()); err == nil {
		t.Error("second Open succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Status().State != "error" {
		if time.Now().After(deadline) {
			t.Fatalf("status never became error: %+v", a.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := a.Status(); !strings.Contains(s.Error, "no-such-if0") {
		t.Errorf("error %q does not name the interface", s.Error)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if s := a.Status(); s.State != "off" {
		t.Errorf("after Close: %+v", s)
	}
}

func TestBrowseRejectsBadArguments(t *testing.T) {
	if _, err := Browse(context.Background(), 0, nil); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("zero timeout: %v", err)
	}
	if _, err := Browse(context.Background(), time.Second, []string{"no-such-if0"}); err == nil || !strings.Contains(err.Error(), "no-such-if0") {
		t.Errorf("unknown interface: %v", err)
	}
}

func TestHostNames(t *testing.T) {
	for _, c := range []struct{ name, id, want string }{
		{"shopbridge on shop-pc", "2afea7369fe11b99", "shopbridge-2afea7369fe11b99.local shopbridge-on-shop-pc.local"},
		{"Shop 1", "abc", "shopbridge-abc.local shop-1.local"},
		{"Касса №1", "abc", "shopbridge-abc.local 1.local"},
		{"***", "abc", "shopbridge-abc.local"},
	} {
		if got := strings.Join(HostNames(c.name, c.id), " "); got != c.want {
			t.Errorf("HostNames(%q, %q) = %q, want %q", c.name, c.id, got, c.want)
		}
	}
}
