package daemon

import (
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/shopbridge/shopbridge"
)

func TestConsoleURLs(t *testing.T) {
	lan := []net.IP{net.ParseIP("192.168.1.20").To4(), net.ParseIP("10.0.0.5").To4()}
	for _, tt := range []struct {
		name  string
		addr  *net.TCPAddr
		https string // its bound address; "" off
		want  []string
	}{
		{"all addresses", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8480}, "",
			[]string{"http://127.0.0.1:8480/admin/", "http://192.168.1.20:8480/admin/", "http://10.0.0.5:8480/admin/"}},
		{"0.0.0.0", &net.TCPAddr{IP: net.IPv4zero, Port: 9000}, "",
			[]string{"http://127.0.0.1:9000/admin/", "http://192.168.1.20:9000/admin/", "http://10.0.0.5:9000/admin/"}},
		{"loopback only", &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8480}, "", []string{"http://127.0.0.1:8480/admin/"}},
		{"one LAN address", &net.TCPAddr{IP: net.ParseIP("192.168.1.20"), Port: 8480}, "", []string{"http://192.168.1.20:8480/admin/"}},
		{"with HTTPS: the LAN over HTTPS", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8480}, "[::]:8443",
			[]string{"http://127.0.0.1:8480/admin/", "https://192.168.1.20:8443/admin/", "https://10.0.0.5:8443/admin/"}},
		{"HTTPS on one LAN address", &net.TCPAddr{IP: net.IPv6unspecified, Port: 8480}, "10.0.0.5:8443",
			[]string{"http://127.0.0.1:8480/admin/", "https://10.0.0.5:8443/admin/"}},
		{"HTTPS on loopback only", &net.TCPAddr{IP: net.IPv4zero, Port: 8480}, "127.0.0.1:8443",
			[]string{"http://127.0.0.1:8480/admin/"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var https *shopbridge.HTTPSStatus
			if tt.https != "" {
				https = &shopbridge.HTTPSStatus{Addr: tt.https}
			}
			if got := consoleURLsFor(tt.addr, https, lan); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := allowLabel(nil); got != "loopback,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,fc00::/7,fe80::/10" {
		t.Errorf("default allow: %q", got)
	}
	if got := allowLabel([]netip.Prefix{netip.MustParsePrefix("192.168.5.0/24")}); got != "loopback,192.168.5.0/24" {
		t.Errorf("allow 192.168.5.0/24: %q", got)
	}
}
