// Command shopbridge is the shopbridge daemon and its operator tools. The
// commands are the table below, in the order --help lists them; each lives
// in its own file (cmdX in x.go), so main stays a thin dispatcher.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/shopbridge/shopbridge/daemon/service"
)

// command is one subcommand. run gets the arguments after the command name
// and returns the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
type command struct {
	name  string
	usage string // one line for the list of commands
	run   func(args []string) int
}

// commandGroups are the commands by what they are for, in --help's order.
var commandGroups = []struct {
	title    string
	commands []command
}{
	{"The daemon", []command{
		{"run", "run the daemon in the foreground", cmdRun},
		{"status", "the running daemon's state (upstream, outbox, parked, registers, console), then the service's", cmdStatus},
	}},
	{"The OS service", []command{
		{"install", "install the OS service running \"run\" with the given run flags", cmdInstall},
		{"uninstall", "remove the OS service; refuses while receipts wait in the outbox", cmdUninstall},
		{"start", "start the OS service", cmdControl("start", "Starts the installed service.", service.Start)},
		{"stop", "stop the OS service", cmdControl("stop", "Stops the service; receipts in the outbox stay on disk.", service.Stop)},
		{"restart", "restart the OS service (after editing the config file)", cmdControl("restart", "Restarts the service, e.g. after editing its config file.", service.Restart)},
		{"service-hook", "setup|teardown: used by the Windows installer", cmdServiceHook},
	}},
	{"Receipts, journal and store", []command{
		{"outbox", "the receipts waiting for the upstream: list [--limit N] [--after SEQ] [--all] [--json]; retry EVENT_ID", cmdQueue(outboxQueue)},
		{"parked", "the receipts the upstream refused: list [--limit N] [--after SEQ] [--all] [--json]; retry EVENT_ID", cmdQueue(parkedQueue)},
		{"journal", "print the journal, one exchange a line (from the daemon, or its store when it is stopped)", cmdJournal},
		{"backup", "save a checked snapshot of the running daemon's store to FILE", cmdBackup},
		{"restore", "install a backup FILE as the store (the daemon must be stopped)", cmdRestore},
	}},
	{"Tools", []command{
		{"discover", "browse the LAN for shopbridge daemons (mDNS) and check each with hello", cmdDiscover},
		{"crmsim", "run a simulated upstream CRM API (for tests, benchmarks and demos)", cmdCRMSim},
		{"version", "print version, commit and build date", cmdVersion},
	}},
}

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, g := range commandGroups {
		for _, c := range g.commands {
			if c.name == name {
				return c, true
			}
		}
	}
	return command{}, false
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	switch name {
	case "-h", "--help", "-help", "help":
		if len(os.Args) > 2 && name == "help" {
			// shopbridge help CMD is shopbridge CMD --help.
			if c, ok := lookup(os.Args[2]); ok {
				os.Exit(c.run([]string{"--help"}))
			}
			fmt.Fprintf(os.Stderr, "shopbridge help: unknown command %q (see shopbridge --help)\n", os.Args[2])
			os.Exit(2)
		}
		usage(os.Stdout)
		return
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "shopbridge: unknown command %q (see shopbridge --help)\n", name)
		os.Exit(2)
	}
	os.Exit(c.run(os.Args[2:]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: shopbridge <command> [flags]")
	width := 0
	for _, g := range commandGroups {
		for _, c := range g.commands {
			width = max(width, len(c.name))
		}
	}
	for _, g := range commandGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, c := range g.commands {
			fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.usage)
		}
	}
	fmt.Fprintln(w, "\nshopbridge <command> --help tells a command's arguments and flags.")
	fmt.Fprintln(w, "\nThe console: while the daemon runs, open http://127.0.0.1:8480/admin/ in a browser on")
	fmt.Fprintln(w, "the same PC (from another PC: http://<PC's address>:8480/admin/, with admin-token set).")
	fmt.Fprintln(w, "shopbridge status prints its URLs; the daemon's start-up log names them too.")
}
