package daemon

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/discovery"
)

// The start-up log tells an installer what the daemon read and where to
// find it: the config file (or none), the data directory, the listen
// address, the allow ranges, upstream or standalone, and the console's
// URLs for a browser on this PC and on the LAN.

// logStart writes the start-up lines. The first stays "msg=listening
// addr=..." with ready_ms: tests and benchmarks wait for it.
func (d *Daemon) logStart() {
	cfg := d.Config
	config := "none"
	if cfg.ConfigRead {
		config = cfg.ConfigFile
	}
	d.Logger.Info("listening", "addr", d.Addr(), "config", config, "data", cfg.DataDir, "upstream", upstreamLabel(cfg.Upstream),
		"allow", allowLabel(cfg.Allow), "mdns", cfg.MDNS, "version", shopbridge.Version, "ready_ms", time.Since(d.started).Milliseconds())
	local, lan := d.consoleURLs[:1], d.consoleURLs[1:]
	args := []any{"this_pc", strings.Join(local, " ")}
	switch {
	case len(lan) == 0:
		args = append(args, "lan", "none (listening on "+d.Addr()+" only)")
	case cfg.AdminToken == "":
		args = append(args, "lan", strings.Join(lan, " "), "lan_access", "set admin-token to open it from another PC")
	default:
		args = append(args, "lan", strings.Join(lan, " "), "lan_access", "with the admin token")
	}
	d.Logger.Info("console", args...)
	if h := d.https; h != nil {
		// An installer compares this with what the browser shows.
		d.Logger.Info("https", "addr", h.Addr, "fingerprint_sha256", h.Fingerprint, "certificate", h.Source,
			"cert", h.CertFile, "not_after", h.NotAfter.UTC().Format("2006-01-02"))
	} else {
		d.Logger.Info("https", "addr", "none (https-listen none): the console from another PC and its token go over plain HTTP")
	}
	for _, w := range cfg.Warnings {
		d.Logger.Warn(w)
	}
}

// consoleURLsFor is where a browser opens the console of a daemon bound to
// addr: over loopback first, then at each LAN address (lan, the LAN
// interfaces' IPv4 addresses) when it listens on all of them: over HTTPS
// when https is on (plain HTTP from another PC redirects there), on its
// own listener's addresses.
func consoleURLsFor(addr *net.TCPAddr, https *shopbridge.HTTPSStatus, lan []net.IP) []string {
	url := func(scheme string, ip net.IP, port int) string {
		return scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(port)) + "/admin/"
	}
	lanURLs := func(scheme string, on *net.TCPAddr) (out []string) {
		for _, ip := range lan {
			if on.IP.To4() == nil || ip.To4() != nil { // [::] takes IPv4 too
				out = append(out, url(scheme, ip, on.Port))
			}
		}
		return out
	}
	if !addr.IP.IsUnspecified() {
		return []string{url("http", addr.IP, addr.Port)}
	}
	out := []string{url("http", net.IPv4(127, 0, 0, 1), addr.Port)}
	if https == nil {
		return append(out, lanURLs("http", addr)...)
	}
	switch ha, err := net.ResolveTCPAddr("tcp", https.Addr); {
	case err != nil:
	case ha.IP.IsUnspecified():
		out = append(out, lanURLs("https", ha)...)
	case !ha.IP.IsLoopback():
		out = append(out, url("https", ha.IP, ha.Port))
	}
	return out
}

// lanConsoleAddrs are the LAN addresses for the console's URLs.
func (d *Daemon) lanConsoleAddrs() []net.IP { return discovery.LANAddrs(d.Config.MDNSIfaces) }

// allowLabel is the allow ranges as the log shows them; loopback is
// allowed whatever they say.
func allowLabel(allow []netip.Prefix) string {
	if allow == nil {
		allow = api.DefaultAllow
	}
	s := []string{"loopback"}
	for _, p := range allow {
		if !p.Addr().IsLoopback() {
			s = append(s, p.String())
		}
	}
	return strings.Join(s, ",")
}
