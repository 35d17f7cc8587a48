//go:build !windows

package service

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	ks "github.com/kardianos/service"
)

// User is the system user the Linux service runs as.
const User = "shopbridge"

// unitPaths are where a shopbridge unit may be: written by Install, or
// shipped by the .deb/.rpm.
var unitPaths = []string{
	"/etc/systemd/system/" + Name + ".service",
	"/usr/lib/systemd/system/" + Name + ".service",
	"/lib/systemd/system/" + Name + ".service",
}

func platformConfig(c *ks.Config, spec *Spec) {
	dataDir := ""
	if spec != nil {
		dataDir = spec.DataDir
	}
	c.Option["SystemdScript"] = unitScript(dataDir)
	if isSystemd() {
		c.Arguments = escapeUnitArgs(c.Arguments)
	}
}

// serviceFilesExist tells whether a unit or init script of the service is
// on disk.
func serviceFilesExist() bool {
	for _, p := range append(unitPaths, "/etc/init.d/"+Name) {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

func isSystemd() bool {
	return strings.HasPrefix(ks.Platform(), "linux-systemd")
}

// Install installs the service: on systemd a hardened unit in
// /etc/systemd/system running as the shopbridge user (created here when
// missing), enabled at boot.
func Install(spec Spec) error {
	if os.Geteuid() != 0 {
		return errors.New("install needs root: run it with sudo")
	}
	s, err := newService(nil, &spec)
	if err != nil {
		return err
	}
	st, err := status(s)
	if err != nil {
		return err
	}
	if st != NotInstalled {
		if _, err := os.Stat(unitPaths[1]); err == nil {
			return fmt.Errorf("%w: the shopbridge package installed it (%s); manage it with systemctl or your package manager", ErrAlreadyInstalled, unitPaths[1])
		}
		return ErrAlreadyInstalled
	}
	exe := spec.Executable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("install: locating this program: %w", err)
		}
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if isSystemd() {
		for _, hidden := range []string{"/home/", "/root/", "/tmp/", "/var/tmp/", "/run/user/"} {
			if strings.HasPrefix(exe, hidden) {
				return fmt.Errorf("install: %s is under %s, which the service's sandbox hides; copy it to /usr/local/bin and run install from there", exe, hidden)
			}
		}
	}
	uid, gid, err := ensureUser()
	if err != nil {
		return err
	}
	dataDir := spec.DataDir
	if dataDir == "" {
		dataDir = LinuxDataDir
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("install: data directory: %w", err)
	}
	if err := os.Chown(dataDir, uid, gid); err != nil {
		return fmt.Errorf("install: data directory: %w", err)
	}
	spec.Executable = exe
	if s, err = newService(nil, &spec); err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("install %s (%s): %w", Name, ks.Platform(), err)
	}
	return nil
}

// ensureUser creates the shopbridge system user and group when missing.
func ensureUser() (uid, gid int, err error) {
	u, err := user.Lookup(User)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return 0, 0, fmt.Errorf("install: looking up user %s: %w", User, err)
		}
		shell := "/usr/sbin/nologin"
		if _, err := os.Stat(shell); err != nil {
			shell = "/sbin/nologin"
		}
		out, err := exec.Command("useradd", "--system", "--user-group", "--home-dir", LinuxDataDir,
			"--no-create-home", "--shell", shell, "--comment", "shopbridge daemon", User).CombinedOutput()
		if err != nil {
			return 0, 0, fmt.Errorf("install: creating user %s: %v: %s", User, err, strings.TrimSpace(string(out)))
		}
		if u, err = user.Lookup(User); err != nil {
			return 0, 0, fmt.Errorf("install: user %s: %w", User, err)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// Uninstall removes the service installed by Install. Its data and the
// shopbridge user stay.
func Uninstall() error {
	if os.Geteuid() != 0 {
		return errors.New("uninstall needs root: run it with sudo")
	}
	s, err := installed()
	if err != nil {
		return err
	}
	if isSystemd() {
		if _, err := os.Stat(unitPaths[0]); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("uninstall: the shopbridge package installed the service; remove the package instead (apt remove shopbridge, dnf remove shopbridge)")
		}
	}
	if err := s.Uninstall(); err != nil {
		return fmt.Errorf("uninstall %s: %w", Name, err)
	}
	return nil
}

// InstalledArgs returns the run flags of the installed service (without
// "run" and ServiceFlag), read back from its unit file.
func InstalledArgs() ([]string, error) {
	for _, p := range unitPaths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		line, err := unitExecStart(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		words, err := ParseExecStart(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return runFlags(words)
	}
	return nil, ErrNotInstalled
}

// Run runs p as the service: it opens p, waits for the service manager's
// stop (SIGTERM) or an interrupt, then closes it.
func Run(p Program) error {
	a := &adapter{p: p}
	s, err := newService(a, nil)
	if err != nil {
		// No service manager kardianos knows (a bare container): the
		// same lifecycle by hand.
		if err := a.Start(nil); err != nil {
			return err
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		signal.Stop(sig)
		return a.Stop(nil)
	}
	if err := s.Run(); err != nil {
		return err
	}
	return a.firstErr()
}

// Setup finishes a service registered by the Windows installer; there is
// nothing to do elsewhere.
func Setup(ports ...int) error { return errors.New("service setup is only for the Windows installer") }

// Teardown undoes Setup; there is nothing to do outside Windows.
func Teardown() error { return errors.New("service teardown is only for the Windows installer") }

// LogHandler returns the slog handler the service should log through, or
// nil to keep logging to stderr: systemd sends that to the journal.
func LogHandler(level slog.Leveler) slog.Handler { return nil }
