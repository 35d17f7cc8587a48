package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
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
	exitRunning      = 0
	exitStopped      = 3
	exitNotInstalled = 4
)

func init() {
	register(&command{name: "install", usage: "install the OS service running \"run\" with the given run flags", run: cmdInstall})
	register(&command{name: "uninstall", usage: "remove the OS service; refuses while receipts wait in the outbox", run: cmdUninstall})
	register(&command{name: "start", usage: "start the OS service", run: controlCmd("start", "Starts the installed service.", service.Start)})
	register(&command{name: "stop", usage: "stop the OS service", run: controlCmd("stop", "Stops the service; receipts in the outbox stay on disk.", service.Stop)})
	register(&command{name: "restart", usage: "restart the OS service (after editing the config file)", run: controlCmd("restart", "Restarts the service, e.g. after editing its config file.", service.Restart)})
	register(&command{name: "status", usage: "print the service state and the daemon's sync state (exit 0 running, 3 stopped, 4 not installed)", run: cmdStatus})
	register(&command{name: "service-hook", usage: "setup|teardown: used by the Windows installer", run: cmdServiceHook})
}

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
	cfg, err := daemon.ParseRunArgs(runArgs)
	if err != nil {
		return runUsageError("install", err)
	}
	port, err := listenPort(cfg.Listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge install: --listen %q: %v\n", cfg.Listen, err)
		return 2
	}
	spec := service.Spec{Args: runArgs, Port: port, DataDir: cfg.DataDir}
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
	fmt.Printf("started; terminals reach it on port %d\n", port)
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
	args, err := service.InstalledArgs()
	if err != nil {
		return 0, "", err
	}
	cfg, err := daemon.ParseRunArgs(args)
	if err != nil {
		return 0, "", fmt.Errorf("the installed service's flags: %w", err)
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

func controlCmd(name, about string, f func() error) func([]string) int {
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

const statusAbout = `Prints the state of the OS service, then the running daemon's own: upstream
online or offline and since when, the last pull and push, the outbox and
receipts the upstream refused (parked). Exit status: 0 running, 3 stopped,
4 not installed, 1 when the service manager cannot tell.`

func cmdStatus(args []string) int {
	c := newFlags("status", "", statusAbout)
	d := c.daemonFlags()
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) > 0 {
		return c.fail("unexpected argument %q", c.positional()[0])
	}
	st, serr := service.Status()
	if serr != nil {
		// The service manager could not say (e.g. a unit file without a
		// running systemd); the daemon may still answer for itself.
		fmt.Printf("service: unknown (%v)\n", serr)
	} else {
		fmt.Printf("service: %s\n", st)
	}
	// The daemon itself answers whether it runs as a service or in the
	// foreground: upstream, outbox, parked receipts.
	base := d.url()
	if err := printDaemonStatus(os.Stdout, base); err != nil {
		fmt.Printf("daemon: %v\n", err)
	}
	if serr != nil {
		return 1
	}
	switch st {
	case service.Running:
		return exitRunning
	case service.Stopped:
		return exitStopped
	default:
		return exitNotInstalled
	}
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
		port := 8480
		if runArgs, err := service.InstalledArgs(); err == nil {
			if cfg, err := daemon.ParseRunArgs(runArgs); err == nil {
				if p, err := listenPort(cfg.Listen); err == nil {
					port = p
				}
			}
		}
		if err := service.Setup(port); err != nil {
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
