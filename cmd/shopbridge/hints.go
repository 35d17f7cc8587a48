package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// Hints that turn a mistake into its fix: the nearest known name for a
// typo (a flag, a config key, an environment variable) and the "=" a
// boolean flag needs. Who must own a directory the daemon cannot write is
// the daemon's (daemon.PermissionHint).

// nearest is the candidate closest to name by edit distance, when it is
// close enough to be the name meant (at most 2 edits, and fewer than half
// of the name's length); "" otherwise.
func nearest(name string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestD && 2*d < max(len(name), len(c)) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps of
// two neighbours that turn a into b (optimal string alignment).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// didYouMean is " (did you mean X?)" for the nearest candidate, or "".
func didYouMean(name string, candidates []string, spell func(string) string) string {
	if n := nearest(name, candidates); n != "" {
		return " (did you mean " + spell(n) + "?)"
	}
	return ""
}

// flagNames are the names of a FlagSet's flags.
func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// optionNames are the names of run's settings, config first.
func optionNames() []string {
	names := []string{"config"}
	for _, o := range options {
		names = append(names, o.name)
	}
	return names
}

// fileKeys are the keys a config file may hold.
func fileKeys() []string {
	var keys []string
	for _, o := range options {
		if o.name != "service" {
			keys = append(keys, o.name)
		}
	}
	return keys
}

// boolValueHint is the hint for a "true" or "false" left over after a
// boolean flag given without "=" (--mdns false): the flag package reads
// --mdns alone as true and the word as an argument. prev is the argument
// before it; "" when arg is no such leftover.
func boolValueHint(fs *flag.FlagSet, prev, arg string) string {
	switch strings.ToLower(arg) {
	case "true", "false", "t", "f", "1", "0":
	default:
		return ""
	}
	name := strings.TrimLeft(prev, "-")
	if !strings.HasPrefix(prev, "-") || name == "" || strings.Contains(name, "=") {
		return ""
	}
	f := fs.Lookup(name)
	if f == nil {
		return ""
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
		return ""
	}
	return fmt.Sprintf("unexpected argument %q: a true/false flag takes its value after \"=\", as in --%s=%s", arg, name, arg)
}

// toolEnv are the SHOPBRIDGE_* variables that are not settings of run:
// the operator commands' (ADDR; ADMIN_TOKEN is also a setting), the tests'
// and the packaging scripts'. Prefixes end in "_".
var toolEnv = []string{"SHOPBRIDGE_ADDR", "SHOPBRIDGE_FAKE_NOW", "SHOPBRIDGE_STRICT", "SHOPBRIDGE_BIN",
	"SHOPBRIDGE_SCREENSHOTS", "SHOPBRIDGE_CHROMIUM", "SHOPBRIDGE_E2E_REGISTER", "SHOPBRIDGE_DISCOVERY_ROLE",
	"SHOPBRIDGE_VM_", "SHOPBRIDGE_TEST_"}

// unknownEnv warns of each SHOPBRIDGE_* variable of environ that names no
// setting (SHOPBRIDGE_UPSTREM=...): it would be ignored without a word.
func unknownEnv(environ []string) []string {
	known := map[string]bool{}
	var envNames []string
	for _, n := range optionNames() {
		known[envName(n)] = true
		envNames = append(envNames, envName(n))
	}
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "SHOPBRIDGE_") || known[name] || isToolEnv(name) {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("environment variable %s names no setting and is ignored%s; the settings are shopbridge run --help's flags as SHOPBRIDGE_<NAME>",
			name, didYouMean(name, envNames, func(s string) string { return s })))
	}
	sort.Strings(warnings)
	return warnings
}

func isToolEnv(name string) bool {
	for _, t := range toolEnv {
		if name == t || (strings.HasSuffix(t, "_") && strings.HasPrefix(name, t)) {
			return true
		}
	}
	return false
}
