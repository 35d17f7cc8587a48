// Package service runs shopbridge as an OS service (systemd on Linux, the
// service control manager on Windows). It is the only package that imports
// github.com/kardianos/service; it turns that library's errors into its own
// and adds what the library does not do: a hardened systemd unit with a
// short restart delay, the service user, Windows recovery actions, firewall
// rules and an Event Log handler for slog.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	ks "github.com/kardianos/service"
)

// Name is the service's name in systemd and in the Windows SCM.
const Name = "shopbridge"

const (
	displayName = "shopbridge"
	description = "Local cloud API for the shop's cash registers: serves bills, keeps receipts, syncs with the CRM."
)

// ServiceFlag is the run flag the installed service is started with, so
// the daemon knows it runs under the service manager instead of guessing
// (Wine's services.exe, for one, fools x/sys's svc.IsWindowsService).
const ServiceFlag = "--service"

// Program is what the service runs: the daemon. Open returns once it
// listens; Close stops it.
type Program interface {
	Open(ctx context.Context) error
	Close() error
}

// State is what Status reports.
type State int

// States of the installed service.
const (
	NotInstalled State = iota
	Stopped
	Running
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Stopped:
		return "stopped"
	default:
		return "not installed"
	}
}

// Errors callers tell apart.
var (
	ErrNotInstalled     = errors.New("the shopbridge service is not installed")
	ErrAlreadyInstalled = errors.New("the shopbridge service is already installed (run shopbridge uninstall first)")
)

// Spec describes the service to install.
type Spec struct {
	// Args are the run flags the service starts with; Install adds
	// "run" and ServiceFlag in front.
	Args []string
	// Executable is the binary to run; empty means this one.
	Executable string
	// Ports are the TCP ports other PCs reach: the terminal API and the
	// HTTPS console (Windows firewall rules).
	Ports []int
	// DataDir is the store directory when it is not the default one
	// (made writable in the Linux unit's sandbox).
	DataDir string
}

// failer is a Program that can fail after Open: the daemon's HTTP server
// dying, say. The service then exits with status 1, so the service manager
// restarts it.
type failer interface {
	Done() <-chan error
}

// checker is a Program that can tell whether it is really alive: the
// parts a cashier depends on answer within ctx. The watchdog pings systemd
// only while Check passes, so a hung daemon gets restarted.
type checker interface {
	Check(ctx context.Context) error
}

// adapter turns a Program into kardianos's Interface: Start opens the
// daemon (which returns once it listens) and Stop closes it. Under systemd
// it also reports readiness and stopping, and pings the watchdog. It
// remembers the first error, because on Windows kardianos only reports it
// to the SCM.
type adapter struct {
	p        Program
	cancel   context.CancelFunc
	mu       sync.Mutex
	err      error
	stopping bool
	exit     func(code int) // os.Exit; tests replace it
	wdStop   context.CancelFunc
	wg       sync.WaitGroup // the watchdog loop
	// checkTimeout bounds each liveness check; 0 is a sixth of the
	// watchdog timeout. Tests that answer checks by hand raise it.
	checkTimeout time.Duration
}

func (a *adapter) Start(ks.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if err := a.p.Open(ctx); err != nil {
		cancel()
		a.setErr(err)
		return err
	}
	log := slog.Default().With("part", "service")
	log.Info("service started", "name", Name)
	// Type=notify: systemd counts the service as started (and starts
	// what is ordered after it) only now that it serves.
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("telling systemd the service is ready", "err", err)
	}
	timeout, err := watchdogTimeout()
	if err != nil {
		log.Warn("systemd watchdog", "err", err)
	}
	if c, ok := a.p.(checker); ok && timeout > 0 {
		wctx, stop := context.WithCancel(context.Background())
		a.wdStop = stop
		a.wg.Add(1)
		go a.watchdog(wctx, c, timeout)
	}
	if f, ok := a.p.(failer); ok {
		go a.watch(f.Done())
	}
	return nil
}

// watchdog pings systemd's watchdog (WATCHDOG=1) every third of its
// timeout while the program's Check passes: one failed check is forgiven,
// two in a row let the timeout run out, and systemd kills and restarts the
// service. Each check gets a sixth of the timeout (5 s of WatchdogSec=30s).
func (a *adapter) watchdog(ctx context.Context, c checker, timeout time.Duration) {
	defer a.wg.Done()
	log := slog.Default().With("part", "service")
	every, limit := timeout/3, a.checkTimeout
	if limit == 0 {
		limit = timeout / 6
	}
	log.Info("systemd watchdog on", "timeout", timeout, "check_every", every, "check_timeout", limit)
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, limit)
		err := c.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Error("liveness check failed: not pinging the systemd watchdog, which restarts the service when this goes on", "err", err, "timeout", timeout)
			failing = true
			continue
		}
		if failing {
			log.Info("liveness check passes again")
			failing = false
		}
		if err := sdNotify("WATCHDOG=1"); err != nil {
			log.Warn("pinging the systemd watchdog", "err", err)
		}
	}
}

// stopWatchdog ends the watchdog loop (if any) and waits for it, so that
// no check runs while the program closes.
func (a *adapter) stopWatchdog() {
	if a.wdStop != nil {
		a.wdStop()
	}
	a.wg.Wait()
}

// watch ends the process when the program fails on its own, so the
// service manager sees a failure and restarts it (Restart=always, the
// SCM's recovery actions). Without this a dead listener would sit in a
// "running" service.
func (a *adapter) watch(done <-chan error) {
	err, ok := <-done
	a.mu.Lock()
	stopping := a.stopping
	a.mu.Unlock()
	if stopping || !ok || err == nil || errors.Is(err, context.Canceled) {
		return
	}
	slog.Default().With("part", "service").Error("daemon failed; exiting so the service manager restarts it", "err", err)
	a.stopWatchdog()
	_ = a.p.Close()
	exit := a.exit
	if exit == nil {
		exit = os.Exit
	}
	exit(1)
}

func (a *adapter) Stop(ks.Service) error {
	slog.Default().With("part", "service").Info("service stopping", "name", Name)
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	// systemd shows "deactivating" and stops expecting watchdog pings
	// while the daemon lets requests in flight finish.
	_ = sdNotify("STOPPING=1")
	a.stopWatchdog()
	err := a.p.Close()
	if a.cancel != nil {
		a.cancel()
	}
	if err != nil {
		a.setErr(err)
	}
	return err
}

func (a *adapter) setErr(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = err
	}
}

func (a *adapter) firstErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// newService builds the kardianos service for spec (nil: for control only).
func newService(i ks.Interface, spec *Spec) (ks.Service, error) {
	c := &ks.Config{
		Name:        Name,
		DisplayName: displayName,
		Description: description,
		Option:      ks.KeyValue{},
	}
	if spec != nil {
		c.Executable = spec.Executable
		c.Arguments = append([]string{"run", ServiceFlag}, spec.Args...)
	}
	platformConfig(c, spec)
	if i == nil {
		i = &adapter{}
	}
	s, err := ks.New(i, c)
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	return s, nil
}

// Start starts the installed service.
func Start() error { return control("start", ks.Service.Start) }

// Stop stops the installed service.
func Stop() error { return control("stop", ks.Service.Stop) }

// Restart stops and starts the installed service.
func Restart() error { return control("restart", ks.Service.Restart) }

// installed returns the service, or ErrNotInstalled.
func installed() (ks.Service, error) {
	s, err := newService(nil, nil)
	if err != nil {
		return nil, err
	}
	st, err := status(s)
	if err != nil {
		return nil, err
	}
	if st == NotInstalled {
		return nil, ErrNotInstalled
	}
	return s, nil
}

func control(what string, f func(ks.Service) error) error {
	s, err := installed()
	if err != nil {
		return err
	}
	if err := f(s); err != nil {
		return fmt.Errorf("%s %s: %w", what, Name, err)
	}
	return nil
}

// Status reports whether the service is running, stopped or not installed.
func Status() (State, error) {
	s, err := newService(nil, nil)
	if err != nil {
		return NotInstalled, err
	}
	return status(s)
}

func status(s ks.Service) (State, error) {
	st, err := s.Status()
	switch {
	case errors.Is(err, ks.ErrNotInstalled):
		return NotInstalled, nil
	case err != nil && !serviceFilesExist():
		// No unit or init script: whatever the manager's query said
		// (sysvinit's "service" exits 1 for an unknown name), nothing is
		// installed.
		return NotInstalled, nil
	case err != nil && strings.Contains(err.Error(), "failed state"):
		// systemd gave up on it (or it exited 2 on a bad config):
		// installed and not running.
		return Stopped, nil
	case err != nil:
		return NotInstalled, fmt.Errorf("status of %s: %w", Name, err)
	case st == ks.StatusRunning:
		return Running, nil
	default:
		return Stopped, nil
	}
}

// Platform names the service manager in use, for messages.
func Platform() string { return ks.Platform() }
