package discovery

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// virtualPrefixes are the interface names SPEC §5 never announces on in
// automatic mode: container bridges, hypervisor networks and VPN tunnels,
// whose addresses a register on the shop LAN cannot reach.
var virtualPrefixes = []string{
	"docker", "br-", "virbr", "vmnet", "vboxnet", "tun", "tap", "wg", "tailscale", "zt", "utun",
}

// isVirtualName reports whether an interface name is excluded by SPEC §5.
func isVirtualName(name string) bool {
	lower := strings.ToLower(name)
	for _, p := range virtualPrefixes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// lanIface is one interface chosen for announcing, with the addresses it
// offers at the moment it was looked at.
type lanIface struct {
	iface net.Interface
	v4    []net.IP
	v6    []net.IP
}

// key identifies the interface itself; a change of key needs a new
// registration because the multicast groups are joined per interface.
func (l lanIface) key() string { return fmt.Sprintf("%s#%d", l.iface.Name, l.iface.Index) }

// addrKey identifies the offered addresses; a change needs an announcement.
func (l lanIface) addrKey() string {
	var b strings.Builder
	for _, ip := range l.v4 {
		b.WriteString(ip.String() + " ")
	}
	for _, ip := range l.v6 {
		b.WriteString(ip.String() + " ")
	}
	return b.String()
}

func (l lanIface) addrs() []string {
	out := make([]string, 0, len(l.v4)+len(l.v6))
	for _, ip := range l.v4 {
		out = append(out, ip.String())
	}
	for _, ip := range l.v6 {
		out = append(out, ip.String())
	}
	return out
}

// offeredAddrs returns the addresses an interface offers to registers, the
// same way the responder answers: every IPv4 address, global and unique
// local IPv6 addresses, and link-local IPv6 only when there is no other.
func offeredAddrs(ifi *net.Interface) (v4, v6 []net.IP) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, nil
	}
	var v6local []net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() {
			continue
		}
		if ip4 := ipn.IP.To4(); ip4 != nil {
			v4 = append(v4, ip4)
			continue
		}
		switch {
		case ipn.IP.IsGlobalUnicast():
			v6 = append(v6, ipn.IP)
		case ipn.IP.IsLinkLocalUnicast():
			v6local = append(v6local, ipn.IP)
		}
	}
	if len(v6) == 0 {
		v6 = v6local
	}
	sortIPs(v4)
	sortIPs(v6)
	return v4, v6
}

func sortIPs(ips []net.IP) {
	slices.SortFunc(ips, func(a, b net.IP) int { return strings.Compare(string(a.To16()), string(b.To16())) })
}

// chooseIfaces picks the interfaces to announce on. With no names it applies
// SPEC §5: up, multicast-capable, not loopback, not virtual by name, and with
// an IPv4 or a routable IPv6 address (every up interface has a link-local
// IPv6 address, which alone does not make it a LAN). Named interfaces are
// taken as given, but each must exist, be up and multicast-capable; the
// problems come back as text for the log and the status, and the usable rest
// is still returned.
func chooseIfaces(names []string) ([]lanIface, []string, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []lanIface
	var problems []string
	if len(names) > 0 {
		for _, name := range names {
			i := slices.IndexFunc(all, func(ifi net.Interface) bool { return ifi.Name == name })
			if i < 0 {
				problems = append(problems, fmt.Sprintf("--mdns-iface %q: no such interface", name))
				continue
			}
			ifi := all[i]
			switch {
			case ifi.Flags&net.FlagUp == 0:
				problems = append(problems, fmt.Sprintf("--mdns-iface %q: interface is down", name))
				continue
			case ifi.Flags&net.FlagMulticast == 0:
				problems = append(problems, fmt.Sprintf("--mdns-iface %q: interface cannot multicast", name))
				continue
			}
			v4, v6 := offeredAddrs(&ifi)
			if len(v4) == 0 && len(v6) == 0 {
				problems = append(problems, fmt.Sprintf("--mdns-iface %q: interface has no address", name))
				continue
			}
			out = append(out, lanIface{iface: ifi, v4: v4, v6: v6})
		}
		return out, problems, nil
	}
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		if isVirtualName(ifi.Name) {
			continue
		}
		v4, v6 := offeredAddrs(&ifi)
		routable6 := slices.ContainsFunc(v6, func(ip net.IP) bool { return !ip.IsLinkLocalUnicast() })
		if len(v4) == 0 && !routable6 {
			continue
		}
		out = append(out, lanIface{iface: ifi, v4: v4, v6: v6})
	}
	if len(out) == 0 {
		problems = append(problems, "no LAN interface is up with an address (loopback and virtual interfaces such as docker*, wg*, tun* are skipped; name one with --mdns-iface)")
	}
	return out, problems, nil
}

// ifaceSetKey identifies a set of interfaces.
func ifaceSetKey(l []lanIface) string {
	keys := make([]string, len(l))
	for i, x := range l {
		keys[i] = x.key()
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// interfacesByName resolves names for Browse; empty means the automatic choice.
func interfacesByName(names []string) ([]net.Interface, error) {
	chosen, problems, err := chooseIfaces(names)
	if err != nil {
		return nil, err
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("no interface to browse on: %s", strings.Join(problems, "; "))
	}
	out := make([]net.Interface, len(chosen))
	for i, c := range chosen {
		out[i] = c.iface
	}
	return out, nil
}

// LANAddrs are the IPv4 addresses of the LAN interfaces (the ones
// discovery would announce on: names, or SPEC §5's choice), for the
// console URLs the start-up log and status show. IPv4 only: a browser's
// address bar wants no zone or brackets.
func LANAddrs(names []string) []net.IP {
	ifaces, _, err := chooseIfaces(names)
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, l := range ifaces {
		out = append(out, l.v4...)
	}
	return out
}
