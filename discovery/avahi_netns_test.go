package discovery

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// avahi runs a private dbus-daemon and an avahi-daemon inside ns, restricted
// to dev, so avahi's tools can browse there as an independent mDNS
// implementation. It skips when avahi or dbus is not installed.
type avahi struct {
	ns  *netns
	env []string
}

func startAvahi(t *testing.T, ns *netns, dev string) *avahi {
	t.Helper()
	for _, tool := range []string{"avahi-daemon", "avahi-browse", "dbus-daemon"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed (apt-get install avahi-daemon avahi-utils dbus)", tool)
		}
	}
	if b, err := os.ReadFile("/run/avahi-daemon/pid"); err == nil {
		t.Skipf("skipped: an avahi-daemon (pid %s) already runs on this machine; its pid file would clash", strings.TrimSpace(string(b)))
	}
	dir := t.TempDir()
	bus := filepath.Join(dir, "bus")
	dbusConf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`, bus)
	avahiConf := fmt.Sprintf("[server]\nuse-ipv4=yes\nuse-ipv6=yes\nallow-interfaces=%s\nenable-dbus=yes\n[wide-area]\nenable-wide-area=no\n[publish]\ndisable-publishing=yes\n", dev)
	if err := os.WriteFile(filepath.Join(dir, "dbus.conf"), []byte(dbusConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "avahi.conf"), []byte(avahiConf), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &avahi{ns: ns, env: []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + bus}}
	dbus := ns.startCmd(t, nil, "sh", "-c", "exec dbus-daemon --nofork --nopidfile --config-file="+filepath.Join(dir, "dbus.conf")+" 2>&1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(bus); err == nil {
			break
		}
		if time.Now().After(deadline) {
			dbus.waitLine(0, 0, "dbus socket", func(string) bool { return false })
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := ns.startCmd(t, a.env, "sh", "-c", "exec avahi-daemon --no-chroot --no-drop-root --no-rlimits -f "+filepath.Join(dir, "avahi.conf")+" 2>&1")
	d.waitLine(0, 10*time.Second, "avahi startup", func(l string) bool { return strings.Contains(l, "Server startup complete") })
	t.Cleanup(func() {
		d.signal(syscall.SIGTERM)
		d.wait(t, 5*time.Second)
	})
	return a
}

// browser starts a continuous `avahi-browse -p -r` for our service type.
func (a *avahi) browser(t *testing.T) *proc {
	return a.ns.startCmd(t, a.env, "sh", "-c", "exec avahi-browse -p -r "+serviceType+" 2>&1")
}

// resolveOnce runs a fresh `avahi-browse -p -r -t` (which still answers from
// avahi-daemon's cache) and returns its resolved IPv4 lines.
func (a *avahi) resolveOnce(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", a.ns.name, "avahi-browse", "-p", "-r", "-t", serviceType)
	cmd.Env = append(os.Environ(), a.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("avahi-browse -t: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "=;") && strings.Contains(l, ";IPv4;") {
			lines = append(lines, l)
		}
	}
	return lines
}

// avahiAddr returns the address field of a resolved `avahi-browse -p` line:
// =;iface;proto;name;type;domain;host;address;port;txt
func avahiAddr(line string) string {
	f := strings.Split(line, ";")
	if len(f) < 9 {
		return ""
	}
	return f[7]
}

// TestNetnsAvahi checks the announcement against avahi, an independent mDNS
// implementation: it finds and resolves the daemon, its cache follows an
// address change (our unsolicited announcement flushes the old address),
// and it sees the service leave on SIGTERM (goodbye).
func TestNetnsAvahi(t *testing.T) {
	needNetns(t)
	t.Parallel()
	d, r := newNS(t, "d"), newNS(t, "r")
	link(t, d, "eth0", r, "eth0")
	d.addr(t, "eth0", "10.75.1.1/24")
	r.addr(t, "eth0", "10.75.1.2/24")
	av := startAvahi(t, r, "eth0")
	browse := av.browser(t)

	ann := d.start(t, "announce", "ANNOUNCE_NAME=avahi-check", "ANNOUNCE_ID=avahi-check-id")
	st, _ := ann.waitStatus(0, 10*time.Second, "announcing", func(s Status) bool { return s.State == "announcing" })
	line, _ := browse.waitLine(0, 15*time.Second, "avahi resolving the daemon", func(l string) bool {
		return strings.HasPrefix(l, "=;eth0;IPv4;avahi-check;_shopbridge._tcp;local;") && avahiAddr(l) == "10.75.1.1"
	})
	for _, want := range []string{
		"shopbridge-avahi-check-id.local", fmt.Sprintf(";%d;", st.Port),
		`"proto=0.1.0"`, `"path=/api/v2"`, `"id=avahi-check-id"`, `"ver=test"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("avahi line %q lacks %s", line, want)
		}
	}

	// Keep the new address when the old primary goes, as a DHCP renumbering does.
	run(t, "ip", "netns", "exec", d.name, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1")
	changed := time.Now()
	run(t, "ip", "-n", d.name, "addr", "add", "10.75.1.7/24", "dev", "eth0")
	run(t, "ip", "-n", d.name, "addr", "del", "10.75.1.1/24", "dev", "eth0")
	deadline := changed.Add(10 * time.Second)
	for {
		lines := av.resolveOnce(t)
		if len(lines) == 1 && avahiAddr(lines[0]) == "10.75.1.7" {
			t.Logf("MEASURE address change → avahi's cache offers the new address: %v", time.Since(changed).Round(10*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the address change avahi still resolves %q", lines)
		}
		time.Sleep(200 * time.Millisecond)
	}

	_, mark := browse.waitLine(0, time.Second, "", func(string) bool { return true })
	stopped := time.Now()
	ann.signal(syscall.SIGTERM)
	ann.waitLine(0, 10*time.Second, "CLOSED", func(l string) bool { return l == "CLOSED" })
	browse.waitLine(mark, 5*time.Second, "avahi seeing the service leave", func(l string) bool {
		return strings.HasPrefix(l, "-;eth0;IPv4;avahi-check;_shopbridge._tcp;local")
	})
	t.Logf("MEASURE SIGTERM → avahi drops the service: %v", time.Since(stopped).Round(10*time.Millisecond))
}
