// Command shopbridge is the shopbridge daemon and its operator tools. Each
// subcommand lives in its own file and registers itself in init, so main
// stays a thin dispatcher.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand. run gets the arguments after the command name
// and returns the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
type command struct {
	name  string
	usage string // one line for the list of commands
	run   func(args []string) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

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
			if c, ok := commands[os.Args[2]]; ok {
				os.Exit(c.run([]string{"--help"}))
			}
			fmt.Fprintf(os.Stderr, "shopbridge help: unknown command %q (see shopbridge --help)\n", os.Args[2])
			os.Exit(2)
		}
		usage(os.Stdout)
		return
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "shopbridge: unknown command %q (see shopbridge --help)\n", name)
		os.Exit(2)
	}
	os.Exit(c.run(os.Args[2:]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: shopbridge <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].usage)
	}
	fmt.Fprintln(w, "\nshopbridge <command> --help tells a command's arguments and flags.")
}
