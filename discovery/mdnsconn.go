package discovery

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

var (
	mdnsGroup4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	mdnsGroup6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353}
)

// perInterfaceControl is true where the OS tells a socket on which interface
// a datagram arrived and lets it choose the outgoing interface per datagram
// (x/net's control messages are not implemented on Windows).
var perInterfaceControl = runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "freebsd"

// mdnsConn is our own mDNS socket pair next to the zeroconf server. The
// library has no way to send an unsolicited announcement after an address
// changes, does not answer A/AAAA queries for the host name it announces
// (grandcat/zeroconf#74) and never notices another responder using our
// instance name; this socket does those three things. It binds UDP 5353 with
// SO_REUSEADDR exactly like the library (Go sets it for multicast listen
// addresses), so both sockets see every mDNS datagram.
type mdnsConn struct {
	v4     *ipv4.PacketConn
	v6     *ipv6.PacketConn
	ifaces []net.Interface
	wg     sync.WaitGroup
}

// errPort5353 marks failures to open the mDNS port itself.
var errPort5353 = errors.New("cannot open UDP port 5353 for mDNS")

// openMDNS opens UDP 5353 for IPv4 (required) and IPv6 (best effort), joins
// the mDNS groups on ifaces and calls handle for every datagram read.
func openMDNS(ifaces []net.Interface, handle func(m *dns.Msg, ifIndex int, from net.Addr)) (*mdnsConn, error) {
	c := &mdnsConn{ifaces: ifaces}
	u4, err := net.ListenUDP("udp4", mdnsGroup4)
	if err != nil {
		return nil, fmt.Errorf("%w (IPv4): %w (another mDNS responder may hold it exclusively)", errPort5353, err)
	}
	c.v4 = ipv4.NewPacketConn(u4)
	_ = c.v4.SetControlMessage(ipv4.FlagInterface, true)
	_ = c.v4.SetMulticastTTL(255)
	_ = c.v4.SetMulticastLoopback(true)
	joined := 0
	var joinErr error
	for i := range ifaces {
		if err := c.v4.JoinGroup(&ifaces[i], &net.UDPAddr{IP: mdnsGroup4.IP}); err != nil {
			joinErr = err
			continue
		}
		joined++
	}
	if joined == 0 && len(ifaces) > 0 {
		c.v4.Close()
		return nil, fmt.Errorf("join mDNS group 224.0.0.251 on %s: %w", ifaceNames(ifaces), joinErr)
	}
	if u6, err := net.ListenUDP("udp6", mdnsGroup6); err == nil {
		c.v6 = ipv6.NewPacketConn(u6)
		_ = c.v6.SetControlMessage(ipv6.FlagInterface, true)
		_ = c.v6.SetMulticastHopLimit(255)
		_ = c.v6.SetMulticastLoopback(true)
		joined6 := 0
		for i := range ifaces {
			if c.v6.JoinGroup(&ifaces[i], &net.UDPAddr{IP: mdnsGroup6.IP}) == nil {
				joined6++
			}
		}
		if joined6 == 0 {
			c.v6.Close()
			c.v6 = nil
		}
	}
	c.wg.Add(1)
	go c.readLoop(handle, func(buf []byte) (int, int, net.Addr, error) {
		n, cm, from, err := c.v4.ReadFrom(buf)
		if cm == nil {
			return n, 0, from, err
		}
		return n, cm.IfIndex, from, err
	})
	if c.v6 != nil {
		c.wg.Add(1)
		go c.readLoop(handle, func(buf []byte) (int, int, net.Addr, error) {
			n, cm, from, err := c.v6.ReadFrom(buf)
			if cm == nil {
				return n, 0, from, err
			}
			return n, cm.IfIndex, from, err
		})
	}
	return c, nil
}

func ifaceNames(ifaces []net.Interface) string {
	s := ""
	for i, ifi := range ifaces {
		if i > 0 {
			s += ","
		}
		s += ifi.Name
	}
	return s
}

// multicast sends m to the mDNS groups on one interface (ifIndex != 0) or on
// all of the conn's interfaces (ifIndex == 0).
func (c *mdnsConn) multicast(m *dns.Msg, ifIndex int) error {
	buf, err := m.Pack()
	if err != nil {
		return fmt.Errorf("pack mDNS message: %w", err)
	}
	var firstErr error
	for i := range c.ifaces {
		ifi := &c.ifaces[i]
		if ifIndex != 0 && ifi.Index != ifIndex {
			continue
		}
		if err := c.send4(buf, ifi, mdnsGroup4); err != nil && firstErr == nil {
			firstErr = err
		}
		if c.v6 != nil {
			_ = c.send6(buf, ifi, mdnsGroup6) // an interface without IPv6 is normal
		}
	}
	return firstErr
}

// unicast answers a querier that asked for a unicast reply (QU bit).
func (c *mdnsConn) unicast(m *dns.Msg, ifIndex int, to net.Addr) error {
	buf, err := m.Pack()
	if err != nil {
		return fmt.Errorf("pack mDNS message: %w", err)
	}
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return fmt.Errorf("unicast mDNS reply to %v: not a UDP address", to)
	}
	var ifi *net.Interface
	for i := range c.ifaces {
		if c.ifaces[i].Index == ifIndex {
			ifi = &c.ifaces[i]
		}
	}
	if ua.IP.To4() != nil {
		return c.send4(buf, ifi, ua)
	}
	if c.v6 == nil {
		return nil
	}
	return c.send6(buf, ifi, ua)
}

func (c *mdnsConn) send4(buf []byte, ifi *net.Interface, to *net.UDPAddr) error {
	var cm *ipv4.ControlMessage
	if ifi != nil {
		if perInterfaceControl {
			cm = &ipv4.ControlMessage{IfIndex: ifi.Index}
		} else if err := c.v4.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("select %s for mDNS: %w", ifi.Name, err)
		}
	}
	if _, err := c.v4.WriteTo(buf, cm, to); err != nil {
		return fmt.Errorf("send mDNS on %v: %w", ifaceName(ifi), err)
	}
	return nil
}

func (c *mdnsConn) send6(buf []byte, ifi *net.Interface, to *net.UDPAddr) error {
	var cm *ipv6.ControlMessage
	if ifi != nil {
		if perInterfaceControl {
			cm = &ipv6.ControlMessage{IfIndex: ifi.Index}
		} else if err := c.v6.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("select %s for mDNS: %w", ifi.Name, err)
		}
	}
	if _, err := c.v6.WriteTo(buf, cm, to); err != nil {
		return fmt.Errorf("send mDNS on %v: %w", ifaceName(ifi), err)
	}
	return nil
}

func ifaceName(ifi *net.Interface) string {
	if ifi == nil {
		return "default interface"
	}
	return ifi.Name
}

// Close stops reading and closes both sockets.
func (c *mdnsConn) Close() error {
	if c == nil {
		return nil
	}
	err := c.v4.Close()
	if c.v6 != nil {
		c.v6.Close()
	}
	c.wg.Wait()
	return err
}

// readLoop reads packets with read (one socket, IPv4 or IPv6) and hands
// each DNS message to handle with the index of the interface it came in on,
// until the socket is closed.
func (c *mdnsConn) readLoop(handle func(*dns.Msg, int, net.Addr), read func([]byte) (n, ifIndex int, from net.Addr, err error)) {
	defer c.wg.Done()
	buf := make([]byte, 9000)
	for {
		n, idx, from, err := read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var m dns.Msg
		if m.Unpack(buf[:n]) != nil {
			continue
		}
		handle(&m, idx, from)
	}
}
