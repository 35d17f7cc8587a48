package service

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	ks "github.com/kardianos/service"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// mdnsPort is the UDP port discovery answers on.
const mdnsPort = 5353

// firewallRule names both inbound rules, so one delete removes them.
const firewallRule = "shopbridge"

func platformConfig(c *ks.Config, spec *Spec) {
	c.Option["StartType"] = "automatic"
	// Delayed start is set by Setup, where a service manager without it
	// (Wine's) costs a warning instead of the whole install.
	// kardianos applies the OnFailure* options only when OnFailure is set.
	c.Option["OnFailure"] = "restart"
	c.Option["OnFailureDelayDuration"] = "5s"
	c.Option["OnFailureResetPeriod"] = 24 * 60 * 60
}

// Install registers the service with the SCM (automatic delayed start,
// restart on failure, an Event Log source) and opens the firewall for the
// TCP port and mDNS.
func Install(spec Spec) error {
	s, err := newService(nil, &spec)
	if err != nil {
		return err
	}
	st, err := status(s)
	if err != nil {
		return err
	}
	if st != NotInstalled {
		return ErrAlreadyInstalled
	}
	if spec.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("install: locating this program: %w", err)
		}
		spec.Executable = exe
	}
	if s, err = newService(nil, &spec); err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("install %s: %w", Name, err)
	}
	return Setup(spec.Ports...)
}

// Setup finishes a registered service: recovery actions (also when the
// daemon exits with an error instead of crashing), delayed automatic
// start, the Event Log source and the firewall rules for the TCP ports
// (the terminal API, the HTTPS console) and mDNS. The .msi, which
// registers the service itself, runs it through "shopbridge service-hook
// setup".
func Setup(ports ...int) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return ErrNotInstalled
	}
	defer s.Close()
	cmdline, err := binaryPath(s)
	if err != nil {
		return err
	}
	log := slog.Default().With("part", "service")
	delayed := windows.SERVICE_DELAYED_AUTO_START_INFO{IsDelayedAutoStartUp: 1}
	err = windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed)))
	if unsupported(err) {
		log.Warn("this service manager has no delayed start; the service starts automatically at boot", "err", err)
	} else if err != nil {
		return fmt.Errorf("service config: delayed automatic start: %w", err)
	}
	actions := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 2 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	}
	if err := s.SetRecoveryActions(actions, 24*60*60); err != nil {
		return fmt.Errorf("service recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); unsupported(err) {
		log.Warn("this service manager restarts the service only when it crashes, not when it exits with an error", "err", err)
	} else if err != nil {
		return fmt.Errorf("service recovery actions: %w", err)
	}
	err = eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info)
	if err != nil && !strings.Contains(err.Error(), "exists") {
		return fmt.Errorf("event log source: %w", err)
	}
	exe := exePath(cmdline)
	if err := addFirewallRules(exe, ports); err != nil {
		// The service works without them on this machine; say what
		// other machines will miss rather than fail the install.
		log.Warn("firewall rules not added: registers and the console on the LAN may not reach the service", "ports", ports, "err", err)
	}
	return nil
}

// serviceFilesExist: the SCM's answer is the whole truth on Windows.
func serviceFilesExist() bool { return true }

// unsupported tells whether err is a service manager refusing a setting it
// does not know (ERROR_INVALID_LEVEL), as Wine's does for delayed start.
func unsupported(err error) bool {
	return errors.Is(err, windows.ERROR_INVALID_LEVEL)
}

// Teardown removes what Setup added beyond the SCM entry: firewall rules
// and the Event Log source.
func Teardown() error {
	var errs []error
	if err := deleteFirewallRules(); err != nil {
		errs = append(errs, err)
	}
	if err := eventlog.Remove(Name); err != nil && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
		errs = append(errs, fmt.Errorf("event log source: %w", err))
	}
	return errors.Join(errs...)
}

// Uninstall removes the service, its firewall rules and its Event Log
// source. The data in %ProgramData%\shopbridge stays.
func Uninstall() error {
	s, err := installed()
	if err != nil {
		return err
	}
	_ = deleteFirewallRules()
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("uninstall %s: %w", Name, err)
	}
	return nil
}

// InstalledArgs returns the run flags of the installed service (without
// "run" and ServiceFlag), read from its command line in the SCM.
func InstalledArgs() ([]string, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return nil, ErrNotInstalled
	}
	defer s.Close()
	cmdline, err := binaryPath(s)
	if err != nil {
		return nil, err
	}
	words, err := windows.DecomposeCommandLine(cmdline)
	if err != nil {
		return nil, fmt.Errorf("service command line %q: %w", cmdline, err)
	}
	return runFlags(words)
}

// binaryPath returns the service's command line. mgr.Service.Config would
// also ask for the delayed-start setting, which Wine's SCM refuses.
func binaryPath(s *mgr.Service) (string, error) {
	var need uint32
	err := windows.QueryServiceConfig(s.Handle, nil, 0, &need)
	if err != windows.ERROR_INSUFFICIENT_BUFFER {
		return "", fmt.Errorf("service config: %w", err)
	}
	buf := make([]byte, need)
	c := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&buf[0]))
	if err := windows.QueryServiceConfig(s.Handle, c, need, &need); err != nil {
		return "", fmt.Errorf("service config: %w", err)
	}
	return windows.UTF16PtrToString(c.BinaryPathName), nil
}

func exePath(cmdline string) string {
	words, err := windows.DecomposeCommandLine(cmdline)
	if err != nil || len(words) == 0 {
		exe, _ := os.Executable()
		return exe
	}
	return words[0]
}

// Run runs p under the SCM (log through LogHandler to reach the Event
// Log). It calls svc.Run itself: kardianos decides from svc.IsWindowsService, which
// answers false under Wine's services.exe, and would then wait for Ctrl-C
// instead of answering the SCM.
func Run(p Program) error {
	a := &adapter{p: p}
	s, err := newService(a, nil)
	if err != nil {
		return err
	}
	h, ok := s.(svc.Handler)
	if !ok {
		return fmt.Errorf("service: %T is no svc.Handler", s)
	}
	if err := svc.Run(Name, h); err != nil {
		return fmt.Errorf("%s was given but the Windows service manager did not start this process (use shopbridge run without it, or shopbridge start): %w", ServiceFlag, err)
	}
	return a.firstErr()
}

func netsh(args string) error {
	sys := os.Getenv("SystemRoot")
	if sys == "" {
		sys = `C:\Windows`
	}
	exe := filepath.Join(sys, "System32", "netsh.exe")
	cmd := exec.Command(exe)
	// netsh parses name="a b" itself; Go's quoting of whole arguments
	// would hide that from it.
	cmd.SysProcAttr = &syscall.SysProcAttr{CmdLine: `netsh ` + args}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("netsh %s: %v: %s", args, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func addFirewallRules(exe string, ports []int) error {
	_ = deleteFirewallRules()
	common := fmt.Sprintf(`name="%s" dir=in action=allow enable=yes profile=any program="%s"`, firewallRule, exe)
	if len(ports) > 0 {
		list := make([]string, len(ports))
		for i, p := range ports {
			list[i] = strconv.Itoa(p)
		}
		if err := netsh(fmt.Sprintf(`advfirewall firewall add rule %s protocol=TCP localport=%s description="shopbridge terminal API and console"`, common, strings.Join(list, ","))); err != nil {
			return err
		}
	}
	return netsh(fmt.Sprintf(`advfirewall firewall add rule %s protocol=UDP localport=%d description="shopbridge discovery (mDNS)"`, common, mdnsPort))
}

func deleteFirewallRules() error {
	return netsh(fmt.Sprintf(`advfirewall firewall delete rule name="%s"`, firewallRule))
}

// LogHandler returns a slog handler writing to the Windows Event Log under
// the service's source (registered at install), or nil when the source
// cannot be opened.
func LogHandler(level slog.Leveler) slog.Handler {
	s, err := newService(nil, nil)
	if err != nil {
		return nil
	}
	l, err := s.SystemLogger(nil)
	if err != nil {
		return nil
	}
	return newEventHandler(l, level)
}
