package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// cmdFlags parses one subcommand's flags and prints its help, the same way
// for every subcommand: a usage line with the arguments, flags spelled
// --flag, each default shown once, --help on stdout with exit 0, and a bad
// flag as one line on stderr with exit 2.
type cmdFlags struct {
	*flag.FlagSet
	cmd   string // "backup", "outbox retry"
	args  string // what follows [flags] on the usage line: "FILE"
	about string // what the command does, a few lines
	// more lists flags the FlagSet does not hold (install passes run's on).
	more      []flagDoc
	moreTitle string
	pos       []string // the arguments that are not flags
}

// newFlags starts the flags of "shopbridge cmd". args names the arguments
// after the flags for the usage line ("" for none).
func newFlags(cmd, args, about string) *cmdFlags {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse prints the help and errors itself
	return &cmdFlags{FlagSet: fs, cmd: cmd, args: args, about: strings.TrimSpace(about)}
}

// parse reads args; flags may come before or after the other arguments
// ("--" ends the flags). ok false means the caller returns code at once:
// 0 after --help, 2 after a bad flag (already reported).
func (c *cmdFlags) parse(args []string) (ok bool, code int) {
	for {
		if err := c.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help(os.Stdout)
				return false, 0
			}
			return false, c.fail("%s", flagMessage(c.FlagSet, err))
		}
		rest := c.Args()
		if len(rest) == 0 {
			return true, 0
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			c.pos = append(c.pos, rest...)
			return true, 0
		}
		if used := len(args) - len(rest); used > 0 {
			if hint := boolValueHint(c.FlagSet, args[used-1], rest[0]); hint != "" {
				return false, c.fail("%s", hint)
			}
		}
		c.pos, args = append(c.pos, rest[0]), rest[1:]
	}
}

// positional is the arguments that were not flags.
func (c *cmdFlags) positional() []string { return c.pos }

// fail reports bad usage in one line with a hint to --help, and returns
// exit code 2.
func (c *cmdFlags) fail(format string, a ...any) int {
	return usageFail(c.cmd, fmt.Sprintf(format, a...))
}

// usageFail prints "shopbridge cmd: msg (see shopbridge cmd --help)" and
// returns exit code 2.
func usageFail(cmd, msg string) int {
	fmt.Fprintf(os.Stderr, "shopbridge %s: %s (see shopbridge %s --help)\n", cmd, msg, cmd)
	return 2
}

// usageLine is "Usage: shopbridge cmd [flags] ARGS".
func (c *cmdFlags) usageLine() string {
	line := "Usage: shopbridge " + c.cmd
	hasFlags := len(c.more) > 0
	c.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		line += " [flags]"
	}
	if c.args != "" {
		line += " " + c.args
	}
	return line
}

// help writes the usage line, what the command does and its flags.
func (c *cmdFlags) help(w io.Writer) {
	fmt.Fprintln(w, c.usageLine())
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", c.about)
	}
	var docs []flagDoc
	c.VisitAll(func(f *flag.Flag) { docs = append(docs, docOf(f)) })
	if len(docs) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		writeFlagDocs(w, docs)
	}
	if len(c.more) > 0 {
		fmt.Fprintf(w, "\n%s\n", c.moreTitle)
		writeFlagDocs(w, c.more)
	}
}

// docOf describes a flag of a FlagSet. A `NAME` in back quotes in its
// usage names its value, as flag.UnquoteUsage reads it.
func docOf(f *flag.Flag) flagDoc {
	arg, usage := flag.UnquoteUsage(f)
	d := flagDoc{Name: f.Name, Arg: arg, Usage: usage}
	if isBoolFlag(f) {
		d.Arg = ""
	} else if a, ok := map[string]string{"value": "VALUE", "string": "VALUE", "duration": "D", "int": "N"}[arg]; ok {
		d.Arg = a
	} else {
		d.Arg = strings.ToUpper(arg)
	}
	switch f.DefValue {
	case "", "0", "0s", "false":
	default:
		d.Default = f.DefValue
	}
	return d
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// writeFlagDocs lists flags in two columns. A boolean that is on by
// default shows how to turn it off (--mdns=false); one that is off is a
// plain switch (--json).
func writeFlagDocs(w io.Writer, docs []flagDoc) {
	names := make([]string, len(docs))
	width := 0
	for i, d := range docs {
		switch {
		case d.Arg != "":
			names[i] = "--" + d.Name + " " + d.Arg
		case d.Default == "true":
			names[i] = "--" + d.Name + "=BOOL"
		default:
			names[i] = "--" + d.Name
		}
		width = max(width, len(names[i]))
	}
	for i, d := range docs {
		text := d.Usage
		switch {
		case d.Arg == "" && d.Default == "true":
			text += fmt.Sprintf(" (default true; off: --%s=false)", d.Name)
		case d.Arg == "" && d.Default == "false":
		case d.Default != "":
			text += " (default " + d.Default + ")"
		}
		lines := wrap(text, max(helpWidth-width-4, 30))
		fmt.Fprintf(w, "  %-*s  %s\n", width, names[i], lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "  %-*s  %s\n", width, "", l)
		}
	}
}

// helpWidth is how wide the help text may get.
const helpWidth = 100

// wrap breaks text into lines of at most n bytes at spaces.
func wrap(text string, n int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > n {
			lines, line = append(lines, line), ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// noFlags is a command without flags or arguments (start, version): it
// answers --help and refuses anything else.
func noFlags(cmd, about string, args []string) (ok bool, code int) {
	c := newFlags(cmd, "", about)
	if ok, code := c.parse(args); !ok {
		return false, code
	}
	if len(c.positional()) > 0 {
		return false, c.fail("unexpected argument %q", c.positional()[0])
	}
	return true, 0
}
