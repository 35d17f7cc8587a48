package main

import (
	"encoding/json"
	"errors"
	"flag"
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
	register(&command{name: "install", usage: "install the OS service running \"run\" with the given run flags ([--no-start] [run flags])", run: cmdInstall})
	register(&command{name: "uninstall", usage: "remove the OS service; refuses while receipts wait in the outbox ([--force])", run: cmdUninstall})
	register(&command{name: "start", usage: "start the OS service", run: controlCmd("start", service.Start)})
	register(&command{name: "stop", usage: "stop the OS service", run: controlCmd("stop", service.Stop)})
	register(&command{name: "restart", usage: "restart the OS service", run: controlCmd("restart", service.Restart)})
	register(&command{name: "status", usage: "print running, stopped or not installed (exit 0, 3, 4)", run: cmdStatus})
	register(&command{name: "service-hook", usage: "setup|teardown: used by the Windows installer", run: cmdServiceHook})
}

func cmdInstall(args []string) int {
	start := true
	var runArgs []string
	for _, a := range args {
		switch a {
		case "--no-start", "-no-start":
			start = false
		case service.ServiceFlag, "-service":
			// added by install itself
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
		fmt.Fprintf(os.Stderr, "shopbridge install: %v\n", err)
		return 2
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

func cmdUninstall(args []string) int {
	fs := flag.NewFlagSet("uninstall", flag.ContinueOnError)
	force := fs.Bool("force", false, "uninstall even while receipts wait in the outbox (the data directory is kept)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "shopbridge uninstall: unexpected argument %q\n", fs.Arg(0))
		return 2
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

func controlCmd(name string, f func() error) func([]string) int {
	return func(args []string) int {
		if len(args) > 0 {
			fmt.Fprintf(os.Stderr, "shopbridge %s: takes no arguments\n", name)
			return 2
		}
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge %s: %v\n", name, err)
			return 1
		}
		return 0
	}
}

func cmdStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	addr := addrFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "shopbridge status: takes no arguments")
		return 2
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
	base := daemonURL(*addr)
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
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: shopbridge service-hook setup|teardown")
		return 2
	}
	switch args[0] {
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
		fmt.Fprintf(os.Stderr, "shopbridge service-hook: unknown action %q (setup or teardown)\n", args[0])
		return 2
	}
	return 0
}
