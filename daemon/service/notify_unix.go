//go:build !windows

package service

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotify sends state (newline-separated assignments such as "READY=1")
// to the service manager: one datagram to the unix socket systemd names in
// $NOTIFY_SOCKET, the sd_notify(3) protocol. Without $NOTIFY_SOCKET (not
// started by systemd, or a unit without Type=notify or WatchdogSec=) it
// does nothing. It is our own dozen lines: the protocol is one datagram,
// not worth a dependency.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	// "/run/systemd/notify" is a socket file; "@name" is a socket in the
	// abstract namespace, which Go's net package maps to the leading NUL
	// byte itself. Newer systemd may also pass "vsock:..." (virtual
	// machines), which a service on the same host never gets.
	if path[0] != '/' && path[0] != '@' {
		return fmt.Errorf("NOTIFY_SOCKET=%q: want a socket path or an @abstract name", path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify systemd: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify systemd (%s): %w", state, err)
	}
	return nil
}

// watchdogTimeout returns the WatchdogSec= of the unit that started this
// process ($WATCHDOG_USEC, when $WATCHDOG_PID is unset or this process), or
// 0 when systemd expects no keep-alive pings.
func watchdogTimeout() (time.Duration, error) {
	v := os.Getenv("WATCHDOG_USEC")
	if v == "" {
		return 0, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil // meant for another process (a wrapper started us)
	}
	usec, err := strconv.ParseUint(v, 10, 63)
	if err != nil || usec == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q: want a positive number of microseconds", v)
	}
	return time.Duration(usec) * time.Microsecond, nil
}
