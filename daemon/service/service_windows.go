package service

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

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
	c.Option["DelayedAutoStart"] = true
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
	return Setup(spec.Port)
}

// Setup finishes a registered service: recovery actions (also when the
// daemon exits with an error instead of crashing), delayed automatic
// start, the Event Log source and the firewall rules. The .msi, which
// registers the service itself, runs it through "shopbridge service-hook
// setup".
func Setup(port int) error {
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
	cfg, err := s.Config()
	if err != nil {
		return fmt.Errorf("service config: %w", err)
	}
	if !cfg.DelayedAutoStart || cfg.StartType != mgr.StartAutomatic {
		cfg.StartType = mgr.StartAutomatic
		cfg.DelayedAutoStart = true
		if err := s.UpdateConfig(cfg); err != nil {
			return fmt.Errorf("service config: delayed automatic start: %w", err)
		}
	}
	actions := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 2 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
	}
	if err := s.SetRecoveryActions(actions, 24*60*60); err != nil {
		return fmt.Errorf("service recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("service recovery actions: %w", err)
	}
	err = eventlog.InstallAsEventCreate(Name, eventlog.Error|eventlog.Warning|eventlog.Info)
	if err != nil && !strings.Contains(err.Error(), "exists") {
		return fmt.Errorf("event log source: %w", err)
	}
	exe := exePath(cfg.BinaryPathName)
	if err := addFirewallRules(exe, port); err != nil {
		// The service works without them on this machine; say what
		// other machines will miss rather than fail the install.
		slog.Default().With("part", "service").Warn("firewall rules not added: registers on the LAN may not reach the service", "port", port, "err", err)
	}
	return nil
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
	s, err := newService(nil, nil)
	if err != nil {
		return err
	}
	st, err := status(s)
	if err != nil {
		return err
	}
	if st == NotInstalled {
		return ErrNotInstalled
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
	cfg, err := s.Config()
	if err != nil {
		return nil, fmt.Errorf("service config: %w", err)
	}
	words, err := windows.DecomposeCommandLine(cfg.BinaryPathName)
	if err != nil {
		return nil, fmt.Errorf("service command line %q: %w", cfg.BinaryPathName, err)
	}
	return runFlags(words)
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

func addFirewallRules(exe string, port int) error {
	_ = deleteFirewallRules()
	common := fmt.Sprintf(`name="%s" dir=in action=allow enable=yes profile=any program="%s"`, firewallRule, exe)
	if err := netsh(fmt.Sprintf(`advfirewall firewall add rule %s protocol=TCP localport=%d description="shopbridge terminal API"`, common, port)); err != nil {
		return err
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
