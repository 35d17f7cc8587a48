package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge/daemon"
	"github.com/shopbridge/shopbridge/daemon/service"
	"github.com/shopbridge/shopbridge/storage"
)

// Exit codes of "shopbridge status", one per state, so scripts need not
// parse the text. 3 and 4 follow the LSB init script status codes.
const (
	exitRunning      = 0 // a daemon answers (as the service or run by hand)
	exitCannotTell   = 1 // no daemon answers and the service manager cannot tell
	exitStopped      = 3 // no daemon answers; the service is installed and stopped
	exitNotInstalled = 4 // no daemon answers; no service is installed
	exitNoAnswer     = 5 // the service manager says it runs, but no daemon answers
)

const installAbout = `Installs the OS service (systemd on Linux, the service control manager on
Windows) that runs "shopbridge run --service" with the run flags given here,
and starts it unless --no-start. Relative --config and --data paths are made
absolute.`

func cmdInstall(args []string) int {
	start := true
	var runArgs []string
	for _, a := range args {
		switch a {
		case "--no-start", "-no-start":
			start = false
		case service.ServiceFlag, "-service":
			// added by install itself
		case "-h", "-help", "--help":
			c := runHelp("install", "", installAbout)
			c.Bool("no-start", false, "install only; start it later with shopbridge start")
			c.help(os.Stdout)
			return 0
		default:
			runArgs = append(runArgs, a)
		}
	}
	runArgs, err := absPathFlags(runArgs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge install: %v\n", err)
		return 2
	}
	cfg, err := loadRunConfig(runArgs)
	if err != nil {
		return runUsageError("install", err)
	}
	ports, err := tcpPorts(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge install: %v\n", err)
		return 2
	}
	spec := service.Spec{Args: runArgs, Ports: ports, DataDir: cfg.DataDir}
	if err := service.Install(spec); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge install: %v\n", err)
		return 1
	}
	fmt.Printf("installed the %s service (%s): shopbridge run %s %s\n", service.Name, service.Platform(), service.ServiceFlag, strings.Join(runArgs, " "))
	if !start {
		fmt.Println("start it with: shopbridge start")
		return 0
	}
	if err := service.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge install: installed, but %v\n", err)
		return 1
	}
	if len(ports) > 1 {
		fmt.Printf("started; terminals reach it on port %d, the console from other PCs on https port %d\n", ports[0], ports[1])
	} else {
		fmt.Printf("started; terminals reach it on port %d\n", ports[0])
	}
	return 0
}

// absPathFlags makes the --config and --data values absolute: the service
// does not start in the directory install ran in.
func absPathFlags(args []string) ([]string, error) {
	out := append([]string(nil), args...)
	for i := 0; i < len(out); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(out[i], "-"), "=")
		if !strings.HasPrefix(out[i], "-") || (name != "config" && name != "data") {
			continue
		}
		if !hasValue {
			if i+1 >= len(out) {
				return nil, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			value = out[i]
		}
		abs, err := filepath.Abs(value)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %w", name, value, err)
		}
		if hasValue {
			out[i] = "--" + name + "=" + abs
		} else {
			out[i] = abs
		}
	}
	return out, nil
}

func listenPort(listen string) (int, error) {
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// tcpPorts are the TCP ports other PCs reach the daemon on: --listen's
// (the registers, the console on this PC) and, unless it is off,
// --https-listen's (the console from other PCs).
func tcpPorts(cfg daemon.Config) ([]int, error) {
	port, err := listenPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", cfg.Listen, err)
	}
	ports := []int{port}
	if cfg.HTTPSListen != "" {
		p, err := listenPort(cfg.HTTPSListen)
		if err != nil {
			return nil, fmt.Errorf("--https-listen %q: %w", cfg.HTTPSListen, err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

const uninstallAbout = `Stops and removes the OS service; the data directory stays. Refuses while
receipts wait in the outbox (they have not reached the upstream yet): it asks
the running daemon, or reads the stopped service's store.`

func cmdUninstall(args []string) int {
	c := newFlags("uninstall", "", uninstallAbout)
	force := c.Bool("force", false, "uninstall even while receipts wait in the outbox (they stay in the data directory)")
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) > 0 {
		return c.fail("unexpected argument %q", c.positional()[0])
	}
	st, err := service.Status()
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge uninstall: %v\n", err)
		return 1
	}
	if st == service.NotInstalled {
		fmt.Fprintf(os.Stderr, "shopbridge uninstall: %v\n", service.ErrNotInstalled)
		return 1
	}
	if !*force {
		n, where, err := waitingReceipts()
		if err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge uninstall: cannot tell whether receipts wait in the outbox (%v); start the service and retry, or use --force\n", err)
			return 1
		}
		if n > 0 {
			fmt.Fprintf(os.Stderr, "shopbridge uninstall: %d receipt(s) wait in the outbox (%s) and have not reached the upstream yet; let the service run until the outbox is empty (see /admin/api/status), or uninstall --force (the data directory is kept)\n", n, where)
			return 1
		}
	}
	if st == service.Running {
		if err := service.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge uninstall: %v\n", err)
			return 1
		}
	}
	if err := service.Uninstall(); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge uninstall: %v\n", err)
		return 1
	}
	fmt.Printf("removed the %s service; its data stays where it was\n", service.Name)
	return 0
}

// waitingReceipts counts the outbox of the installed service: from the
// running daemon's status endpoint, else from its store, read-only.
func waitingReceipts() (n int, where string, err error) {
	cfg, err := installedConfig()
	if err != nil {
		return 0, "", err
	}
	base := loopbackURL(cfg.Listen)
	n, errHTTP := outboxFromDaemon(base)
	if errHTTP == nil {
		return n, "running daemon at " + base, nil
	}
	path := filepath.Join(cfg.DataDir, storage.FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, path, nil // never ran: nothing can wait
	}
	s, err := storage.Open(path, storage.Options{ReadOnly: true, LockTimeout: 2 * time.Second})
	if err != nil {
		return 0, "", fmt.Errorf("daemon: %v; store: %w", errHTTP, err)
	}
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		return 0, "", fmt.Errorf("store %s: %w", path, err)
	}
	return st.Outbox, "store " + path, nil
}

// outboxFromDaemon asks the daemon at base how many receipts wait.
func outboxFromDaemon(base string) (int, error) {
	resp, err := adminGet(base, "/admin/api/status", 3*time.Second)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st struct {
		Outbox *int `json:"outbox"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return 0, fmt.Errorf("%s/admin/api/status: %w", base, err)
	}
	if st.Outbox == nil {
		return 0, fmt.Errorf("%s/admin/api/status: no outbox field", base)
	}
	return *st.Outbox, nil
}

func cmdControl(name, about string, f func() error) func([]string) int {
	return func(args []string) int {
		if ok, code := noFlags(name, about, args); !ok {
			return code
		}
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge %s: %v\n", name, err)
			return 1
		}
		return 0
	}
}

const statusAbout = `Asks the running daemon (as the service or started by hand) for its state:
the store if it cannot write, upstream online or offline and since when, the
last pull and push, the receipts waiting in the outbox and those the
upstream refused (parked), bills paid twice, the registers seen with when,
and the console's URL. Lists are cut after a few items; shopbridge outbox
list and shopbridge parked list show them all. Then the OS service's state.

Exit status:
  0  a daemon answers (the service, or one started by hand)
  1  no daemon answers, and the service manager cannot tell (e.g. systemd
     is not running on this machine)
  3  no daemon answers; the service is installed and stopped
  4  no daemon answers; no service is installed
  5  the service manager says the service runs, but no daemon answers at
     the address (still starting, hung, or listening elsewhere: see --addr)
  2  bad usage`

func cmdStatus(args []string) int {
	c := newFlags("status", "", statusAbout)
	d := c.daemonFlags()
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) > 0 {
		return c.fail("unexpected argument %q", c.positional()[0])
	}
	base := d.url()
	st, derr := fetchStatus(base)
	svc, serr := service.Status()
	if derr == nil {
		// The daemon answers for itself, whether it runs as the service
		// or by hand: that is the state the registers meet.
		writeDaemonStatus(os.Stdout, st, time.Now())
		fmt.Printf("service:    %s\n", serviceLine(svc, serr, true))
		return exitRunning
	}
	var unreachable *unreachableError
	if !errors.As(derr, &unreachable) {
		// It answers, but not with its status (a token it wants, say).
		fmt.Printf("daemon:     answers, but %v\n", derr)
		fmt.Printf("service:    %s\n", serviceLine(svc, serr, true))
		return exitRunning
	}
	fmt.Printf("daemon:     none answers: %v\n", derr)
	fmt.Printf("service:    %s\n", serviceLine(svc, serr, false))
	switch {
	case serr != nil:
		return exitCannotTell
	case svc == service.Running:
		return exitNoAnswer
	case svc == service.Stopped:
		return exitStopped
	default:
		return exitNotInstalled
	}
}

// serviceLine is the service's state in words; answering tells whether a
// daemon answered above.
func serviceLine(svc service.State, err error, answering bool) string {
	if err != nil {
		line := fmt.Sprintf("the service manager cannot tell (%v)", err)
		if noSystemd() {
			line = "the service manager cannot tell: systemd is not running on this machine"
			if !answering {
				line += "; start the daemon by hand: " + byHandCommand()
			}
		}
		return line
	}
	switch {
	case svc == service.NotInstalled && answering:
		return "not installed as a service (running by hand)"
	case svc == service.NotInstalled:
		return "not installed; start the daemon by hand with shopbridge run, or install the service with shopbridge install"
	case svc == service.Stopped && answering:
		return fmt.Sprintf("installed (%s), stopped: the daemon above runs by hand", service.Platform())
	case svc == service.Stopped:
		return fmt.Sprintf("installed (%s), stopped; start it with shopbridge start", service.Platform())
	case answering:
		return fmt.Sprintf("running (%s)", service.Platform())
	default:
		return fmt.Sprintf("running (%s), but no daemon answers at the address above: still starting, hung, or listening elsewhere (see --addr)", service.Platform())
	}
}

// noSystemd: a Linux machine whose init is not systemd (a container, WSL,
// sysvinit): the unit the package installs does nothing there.
func noSystemd() bool {
	if runtime.GOOS != "linux" {
		return false
	}
	_, err := os.Stat("/run/systemd/system")
	return err != nil
}

// byHandCommand starts the packaged daemon as the unit would.
func byHandCommand() string {
	if _, err := user.Lookup("shopbridge"); err == nil {
		return "runuser -u shopbridge -- shopbridge run (as root)"
	}
	return "shopbridge run"
}

// cmdServiceHook finishes (setup) or undoes (teardown) the service the
// Windows installer registers: recovery actions, delayed start, the Event
// Log source and the firewall rules.
func cmdServiceHook(args []string) int {
	c := newFlags("service-hook", "setup|teardown", "Finishes (setup) or undoes (teardown) the service the Windows installer\nregisters: recovery actions, delayed start, the Event Log source and the\nfirewall rules. The .msi runs it; there is no need to run it by hand.")
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) != 1 {
		return c.fail("want one action, setup or teardown")
	}
	switch action := c.positional()[0]; action {
	case "setup":
		// The installed service's ports; the defaults when its flags
		// cannot be read (the service then fails to start and says why).
		ports := []int{8480, daemon.DefaultHTTPSPort}
		if cfg, err := installedConfig(); err == nil {
			if p, err := tcpPorts(cfg); err == nil {
				ports = p
			}
		}
		if err := service.Setup(ports...); err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge service-hook setup: %v\n", err)
			return 1
		}
	case "teardown":
		if err := service.Teardown(); err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge service-hook teardown: %v\n", err)
			return 1
		}
	default:
		return c.fail("unknown action %q, want setup or teardown", action)
	}
	return 0
}
