package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/daemon"
)

// The settings of `shopbridge run`: each a flag, an environment variable
// SHOPBRIDGE_<NAME> and a key of the TOML config file, merged into the
// daemon.Config the daemon runs with. The daemon only wires; reading the
// command line, the environment and the file is the command's job (as
// Litestream keeps its config in cmd/litestream).

// usageError is a bad flag, environment variable or config file: exit 2.
type usageError struct {
	msg    string
	syntax bool
}

func (e *usageError) Error() string { return e.msg }

// Syntax reports whether the command line itself is malformed (an unknown
// flag, a flag without its value, a stray argument), where a pointer to
// --help helps; a bad value names what it wants instead.
func (e *usageError) Syntax() bool { return e.syntax }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// option is one setting of `run`: a flag, SHOPBRIDGE_<NAME> and a config
// file key of the same name.
type option struct {
	name   string
	arg    string // the value's name in the help: ADDR, DIR; "" for a boolean
	def    func() string
	defDoc string // the default as the help shows it, when def's value says too little
	isBool bool
	usage  string
	set    func(c *daemon.Config, v string) error
}

// defaultConfigFile is where the config file lives unless --config says.
func defaultConfigFile() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "shopbridge", "shopbridge.toml")
	}
	return "/etc/shopbridge/shopbridge.toml"
}

// defaultDataDir is where the store lives unless --data says.
func defaultDataDir() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(programData(), "shopbridge")
	}
	return "/var/lib/shopbridge"
}

func defaultName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "unknown"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return "shopbridge on " + h
}

// hostNameRE is a host name (labels of letters, digits, '-', '_') or an
// IPv4 or IPv6 address, for --admin-hosts.
var hostNameRE = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?\.?$|^[0-9A-Fa-f:.]+$`)

func constant(s string) func() string { return func() string { return s } }

var options = []option{
	{name: "listen", arg: "ADDR", def: constant(":8480"), usage: "address to serve terminals and operators on",
		set: func(c *daemon.Config, v string) error {
			if err := checkListenAddr(v); err != nil {
				return err
			}
			c.Listen = v
			return nil
		}},
	{name: "data", arg: "DIR", def: defaultDataDir, usage: "directory of the store, DIR/shopbridge.db",
		set: func(c *daemon.Config, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("empty path")
			}
			c.DataDir = v
			return nil
		}},
	{name: "upstream", arg: "URL", def: constant(""), defDoc: "none: standalone, no sync", usage: "base URL of the cloud CRM API",
		set: func(c *daemon.Config, v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("want an http:// or https:// URL, got %q", v)
			}
			c.Upstream = strings.TrimRight(v, "/")
			return nil
		}},
	{name: "upstream-token", arg: "TOKEN", def: constant(""), usage: "Bearer token for the upstream; never logged or journaled",
		set: func(c *daemon.Config, v string) error { c.UpstreamToken = v; return nil }},
	{name: "sync-interval", arg: "D", def: constant("10s"), usage: "how often to pull from the upstream",
		set: func(c *daemon.Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond {
				return fmt.Errorf("want a duration of at least 100ms such as 10s, got %q", v)
			}
			c.SyncInterval = d
			return nil
		}},
	{name: "push-in-flight", arg: "N", def: constant("64"), usage: "the most receipts of different bills in flight to the upstream at once: the cap of the adaptive push window",
		set: func(c *daemon.Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 256 {
				return fmt.Errorf("want a number from 1 to 256, got %q", v)
			}
			c.PushInFlight = n
			return nil
		}},
	{name: "timezone", arg: "NAME", def: constant(""), defDoc: "the OS zone", usage: "the shop's time zone for date=today, e.g. Europe/Moscow",
		set: func(c *daemon.Config, v string) error {
			if v == "" {
				c.Timezone = time.Local
				return nil
			}
			loc, err := time.LoadLocation(v)
			if err != nil {
				return fmt.Errorf("unknown time zone %q", v)
			}
			c.Timezone = loc
			return nil
		}},
	{name: "mdns", def: constant("true"), isBool: true, usage: "announce over mDNS/DNS-SD",
		set: func(c *daemon.Config, v string) (err error) { c.MDNS, err = parseBool(v); return err }},
	{name: "name", arg: "NAME", def: defaultName, usage: "instance name announced over mDNS",
		set: func(c *daemon.Config, v string) error {
			if v == "" || len(v) > 63 {
				return fmt.Errorf("want 1 to 63 bytes, got %d", len(v))
			}
			c.Name = v
			return nil
		}},
	{name: "mdns-iface", arg: "A,B", def: constant(""), defDoc: "the LAN interfaces", usage: "interfaces to announce on",
		set: func(c *daemon.Config, v string) error { c.MDNSIfaces = splitList(v); return nil }},
	{name: "terminal-token", arg: "TOKEN", def: constant(""), defDoc: "none: not required", usage: "Bearer token terminals must send (all of /api/v2 but hello)",
		set: func(c *daemon.Config, v string) error { c.TerminalToken = v; return nil }},
	{name: "admin-token", arg: "TOKEN", def: constant(""), defDoc: "none: loopback only", usage: "Bearer token for /admin and /metrics from other hosts",
		set: func(c *daemon.Config, v string) error { c.AdminToken = v; return nil }},
	{name: "allow", arg: "CIDR,...", def: constant(""), defDoc: "the private ranges", usage: "clients other than loopback that may connect; loopback always may",
		set: func(c *daemon.Config, v string) error {
			if v == "" {
				return nil
			}
			for _, s := range splitList(v) {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					a, aerr := netip.ParseAddr(s)
					if aerr != nil {
						return fmt.Errorf("%q is not a CIDR or address", s)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				c.Allow = append(c.Allow, p.Masked())
			}
			return nil
		}},
	{name: "admin-hosts", arg: "NAME,...", def: constant(""), defDoc: "none: this PC's addresses and names only",
		usage: "further host names the console and /metrics may be reached by (a DNS name of this PC)",
		set: func(c *daemon.Config, v string) error {
			c.AdminHosts = nil
			for _, h := range splitList(v) {
				if !hostNameRE.MatchString(h) {
					return fmt.Errorf("%q is not a host name or address", h)
				}
				c.AdminHosts = append(c.AdminHosts, strings.ToLower(h))
			}
			return nil
		}},
	{name: "journal-max-age", arg: "D", def: constant("720h"), usage: "journal entries older than this go",
		set: func(c *daemon.Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("want a duration such as 720h, got %q", v)
			}
			c.JournalMaxAge = d
			return nil
		}},
	{name: "journal-max-size", arg: "SIZE", def: constant("256MiB"), usage: "oldest journal entries go beyond this size",
		set: func(c *daemon.Config, v string) (err error) { c.JournalMaxSize, err = parseSize(v); return err }},
	{name: "demo", def: constant("false"), isBool: true, usage: "seed an empty store with sample bills",
		set: func(c *daemon.Config, v string) error {
			on, err := parseBool(v)
			c.Demo = nil
			if on {
				c.Demo = demoData()
			}
			return err
		}},
	{name: "service", def: constant("false"), isBool: true, usage: "run under the OS service manager (set by install)",
		set: func(c *daemon.Config, v string) (err error) { c.Service, err = parseBool(v); return err }},
	{name: "log-level", arg: "LEVEL", def: constant("info"), usage: "debug, info, warn or error; logs go to stderr",
		set: func(c *daemon.Config, v string) error {
			switch strings.ToLower(v) {
			case "debug", "info", "warn", "error":
				c.LogLevel = strings.ToLower(v)
				return nil
			}
			return fmt.Errorf("want debug, info, warn or error, got %q", v)
		}},
}

// demoData is what --demo seeds: the simulator's default bills (the daemon
// does not link the simulator).
func demoData() *daemon.DemoData {
	d := crmsim.DefaultData()
	return &daemon.DemoData{System: d.System, Bills: d.Bills}
}

// checkListenAddr accepts host:port or :port with an IP address (or
// localhost) as the host.
func checkListenAddr(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port or :port, got %q", v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	if host != "" && net.ParseIP(strings.Trim(host, "[]")) == nil && host != "localhost" {
		return fmt.Errorf("host %q is not an IP address", host)
	}
	return nil
}

// tlsOptions are the HTTPS settings (the daemon's tls.go), after listen.
var tlsOptions = []option{
	{name: "https-listen", arg: "ADDR", def: constant(""), defDoc: "port 8443 on listen's host (port 0 when listen's is 0); none: off",
		usage: "address of the HTTPS listener (the console from other PCs, registers that pin the certificate)",
		set: func(c *daemon.Config, v string) error {
			switch v = strings.TrimSpace(v); v {
			case "none":
				c.HTTPSListen = ""
				return nil
			case "":
				// After listen (options order): no new address is opened
				// beyond the ones listen opens, and a test's or a second
				// instance's listen :0 does not fight over 8443.
				host, port, _ := net.SplitHostPort(c.Listen)
				if port != "0" {
					port = strconv.Itoa(daemon.DefaultHTTPSPort)
				}
				v = net.JoinHostPort(host, port)
				if v == c.Listen && port != "0" {
					return fmt.Errorf("listen is %s, the port HTTPS would take: set https-listen to another address, or none", c.Listen)
				}
			default:
				if err := checkListenAddr(v); err != nil {
					return err
				}
			}
			c.HTTPSListen = v
			return nil
		}},
	{name: "tls-cert", arg: "FILE", def: constant(""), defDoc: "none: a self-signed one made in DATA/tls",
		usage: "the shop's certificate (PEM, the chain after it) for HTTPS; needs tls-key",
		set:   func(c *daemon.Config, v string) error { c.TLSCert = strings.TrimSpace(v); return nil }},
	{name: "tls-key", arg: "FILE", def: constant(""), defDoc: "none",
		usage: "the private key (PEM) of tls-cert",
		set:   func(c *daemon.Config, v string) error { c.TLSKey = strings.TrimSpace(v); return nil }},
}

// The HTTPS options after listen; the scheduled backups' options
// after data (the default dir is inside it).
func init() {
	options = slices.Insert(options, 1, tlsOptions...)
	options = append(options, backupOptions...)
}

var backupOptions = []option{
	{name: "backup-dir", arg: "DIR", def: constant(""), defDoc: "DATA/backups; none: off", usage: "folder of the scheduled backups",
		set: func(c *daemon.Config, v string) error {
			switch strings.TrimSpace(v) {
			case "":
				c.BackupDir = filepath.Join(c.DataDir, "backups")
			case "none":
				c.BackupDir = ""
			default:
				c.BackupDir = v
			}
			return nil
		}},
	{name: "backup-every", arg: "D", def: constant("24h"), usage: "how often to back the store up into backup-dir",
		set: func(c *daemon.Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second {
				return fmt.Errorf("want a duration of at least 1s such as 24h, got %q", v)
			}
			c.BackupEvery = d
			return nil
		}},
	{name: "backup-keep", arg: "N", def: constant("7"), usage: "how many scheduled backups to keep; older ones go once a new one is checked",
		set: func(c *daemon.Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > 1000 {
				return fmt.Errorf("want a number from 1 to 1000, got %q", v)
			}
			c.BackupKeep = n
			return nil
		}},
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
	if err != nil {
		return false, fmt.Errorf("want true or false, got %q", v)
	}
	return b, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parseSize reads a byte count with an optional KiB, MiB or GiB suffix.
func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size such as 256MiB, got %q", v)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", v)
	}
	return n * mult, nil
}

// envName is the environment variable of a run option.
func envName(option string) string {
	return "SHOPBRIDGE_" + strings.ToUpper(strings.ReplaceAll(option, "-", "_"))
}

type flagValue struct {
	isBool bool
	val    string
}

func (f *flagValue) String() string     { return f.val }
func (f *flagValue) Set(s string) error { f.val = s; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// loadRunConfig merges the flags of `run` with SHOPBRIDGE_* environment
// variables, the config file and the defaults. Any bad value is a
// *usageError naming where it came from; --help is flag.ErrHelp.
func loadRunConfig(args []string) (daemon.Config, error) {
	c, err := parseRunArgs(args, os.LookupEnv, io.Discard)
	if err == nil {
		c.Warnings = append(c.Warnings, unknownEnv(os.Environ())...)
	}
	return c, err
}

func parseRunArgs(args []string, lookupEnv func(string) (string, bool), out io.Writer) (daemon.Config, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(out)
	values := map[string]*flagValue{}
	for _, o := range options {
		v := &flagValue{isBool: o.isBool}
		values[o.name] = v
		fs.Var(v, o.name, o.usage)
	}
	configFlag := &flagValue{}
	fs.Var(configFlag, "config", "config file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return daemon.Config{}, flag.ErrHelp
		}
		return daemon.Config{}, &usageError{msg: flagMessage(fs, err), syntax: true}
	}
	if fs.NArg() > 0 {
		if i := len(args) - fs.NArg(); i > 0 {
			if hint := boolValueHint(fs, args[i-1], fs.Arg(0)); hint != "" {
				return daemon.Config{}, &usageError{msg: hint}
			}
		}
		return daemon.Config{}, &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0)), syntax: true}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var c daemon.Config
	c.ConfigFile = defaultConfigFile()
	explicit := false
	if given["config"] {
		c.ConfigFile, explicit = configFlag.val, true
	} else if v, ok := lookupEnv(envName("config")); ok && v != "" {
		c.ConfigFile, explicit = v, true
	}
	file, err := readConfigFile(c.ConfigFile, explicit)
	if err != nil {
		return daemon.Config{}, err
	}
	c.ConfigRead = file != nil
	for _, o := range options {
		v, source := o.def(), "default"
		if fv, ok := file[o.name]; ok {
			v, source = fv, fmt.Sprintf("config file %s: key %s", c.ConfigFile, o.name)
		}
		if ev, ok := lookupEnv(envName(o.name)); ok {
			v, source = ev, envName(o.name)
		}
		if given[o.name] {
			v, source = values[o.name].val, "--"+o.name
		}
		if err := o.set(&c, v); err != nil {
			return daemon.Config{}, usagef("%s: %v", source, err)
		}
	}
	if err := c.Validate(); err != nil {
		return daemon.Config{}, &usageError{msg: err.Error()}
	}
	return c, nil
}

// flagMessage rewrites an error of the flag package in the --flag spelling
// the help text uses ("unknown flag --bogus" rather than "flag provided but
// not defined: -bogus"), saying what a bad value should look like.
func flagMessage(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		return "unknown flag --" + name + didYouMean(name, flagNames(fs), func(s string) string { return "--" + s })
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return "flag --" + strings.TrimLeft(name, "-") + " needs a value"
	}
	// invalid value "x" for flag -timeout: parse error
	// invalid boolean value "x" for -json: parse error
	if m := badValueRE.FindStringSubmatch(msg); m != nil {
		want := ""
		if f := fs.Lookup(m[2]); f != nil {
			if g, ok := f.Value.(flag.Getter); ok {
				switch g.Get().(type) {
				case bool:
					want = "true or false"
				case time.Duration:
					want = "a duration such as " + nonZero(f.DefValue, "3s")
				case int, int64, uint, uint64:
					want = "a whole number"
				}
			}
		}
		if want == "" {
			return fmt.Sprintf("--%s: invalid value %s", m[2], m[1])
		}
		return fmt.Sprintf("--%s: want %s, got %s", m[2], want, m[1])
	}
	return msg
}

var badValueRE = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-+([^:]+):`)

func nonZero(s, fallback string) string {
	if s == "" || s == "0" || s == "0s" {
		return fallback
	}
	return s
}

// flagDoc describes one flag for a help text.
type flagDoc struct {
	Name    string // without dashes
	Arg     string // the value's name (ADDR); "" for a boolean
	Usage   string
	Default string // as the help shows it; "" when there is none to show
}

// runFlags are the flags of `run` for its help text, --config first.
func runFlags() []flagDoc {
	docs := []flagDoc{{Name: "config", Arg: "PATH", Usage: "config file; a missing default file is fine, a missing named one is an error",
		Default: defaultConfigFile()}}
	for _, o := range options {
		d := flagDoc{Name: o.name, Arg: o.arg, Usage: o.usage, Default: o.defDoc}
		if d.Default == "" {
			d.Default = o.def()
		}
		if o.isBool {
			d.Arg = ""
		}
		docs = append(docs, d)
	}
	return docs
}

// readConfigFile reads the TOML config file into option name -> text. A
// missing default file is fine; a missing named one is an error.
func readConfigFile(path string, explicit bool) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit {
			return nil, nil
		}
		return nil, usagef("config file %s: %v", path, err)
	}
	return parseConfigFile(path, data)
}

// parseConfigFile parses config file text: TOML keys named like the flags
// (dashes or underscores), values of any TOML scalar type or, for list
// options, an array of strings.
func parseConfigFile(path string, data []byte) (map[string]string, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, usagef("config file %s: %v", path, err)
	}
	known := map[string]bool{}
	for _, o := range options {
		known[o.name] = true
	}
	out := map[string]string{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		if !known[name] || name == "service" {
			return nil, usagef("config file %s: unknown key %q%s", path, k, didYouMean(name, fileKeys(), func(s string) string { return s }))
		}
		if _, twice := out[name]; twice {
			return nil, usagef("config file %s: key %s is given twice (with dashes and with underscores)", path, name)
		}
		switch v := raw[k].(type) {
		case string:
			out[name] = v
		case bool:
			out[name] = strconv.FormatBool(v)
		case int64:
			out[name] = strconv.FormatInt(v, 10)
		case float64:
			out[name] = strconv.FormatFloat(v, 'f', -1, 64)
		case []any:
			parts := make([]string, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, usagef("config file %s: key %s: list items must be strings", path, k)
				}
				parts[i] = s
			}
			out[name] = strings.Join(parts, ",")
		default:
			return nil, usagef("config file %s: key %s: unsupported value %v", path, k, v)
		}
	}
	return out, nil
}
