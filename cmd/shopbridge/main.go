// Command shopbridge is the shopbridge daemon and its operator tools. Each
// subcommand lives in its own file and registers itself in init, so main
// stays a thin dispatcher.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one subcommand. run gets the arguments after the command name
// and returns the process exit code: 0 ok, 1 runtime failure, 2 bad usage.
type command struct {
	name  string
	usage string // one line for the help text
	run   func(args []string) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "help" {
		usage()
		return
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "shopbridge: unknown command %q (try shopbridge help)\n", name)
		os.Exit(2)
	}
	os.Exit(c.run(os.Args[2:]))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: shopbridge <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].usage)
	}
}
