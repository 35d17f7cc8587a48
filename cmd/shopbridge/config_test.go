package main

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/daemon"
)

// env is a fake environment for parseRunArgs.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shopbridge.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParse(t *testing.T, args []string, e env) daemon.Config {
	t.Helper()
	c, err := parseRunArgs(args, e.lookup, io.Discard)
	if err != nil {
		t.Fatalf("parseRunArgs(%q, %v): %v", args, e, err)
	}
	return c
}

func TestRunDefaults(t *testing.T) {
	// An empty named config file: every option takes its default.
	path := writeConfig(t, "")
	c := mustParse(t, []string{"--config", path}, env{})
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	want := daemon.Config{
		ConfigFile: path, Listen: ":8480", HTTPSListen: ":8443", DataDir: defaultDataDir(), SyncInterval: 10 * time.Second, PushInFlight: 64,
		Timezone: time.Local, MDNS: true, Name: "shopbridge on " + host,
		JournalMaxAge: 720 * time.Hour, JournalMaxSize: 256 << 20, LogLevel: "info",
		BackupDir: filepath.Join(defaultDataDir(), "backups"), BackupEvery: 24 * time.Hour, BackupKeep: 7,
		ConfigRead: true, // the start-up log names it
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults\n%+v\nwant\n%+v", c, want)
	}
}

func TestMissingDefaultConfigFileIsFine(t *testing.T) {
	m, err := readConfigFile(filepath.Join(t.TempDir(), "absent.toml"), false)
	if err != nil || m != nil {
		t.Errorf("missing default config file: %v, %v", m, err)
	}
	if _, err := os.Stat(defaultConfigFile()); errors.Is(err, os.ErrNotExist) {
		c := mustParse(t, nil, env{})
		if c.ConfigFile != defaultConfigFile() || c.Listen != ":8480" || c.ConfigRead {
			t.Errorf("no config file: %+v", c)
		}
	} else {
		t.Logf("skipped the run without flags: %s exists on this machine", defaultConfigFile())
	}
}

func TestRunPrecedence(t *testing.T) {
	file := writeConfig(t, `
listen = "127.0.0.1:9001"
sync_interval = "30s"
upstream = "https://file.example/"
mdns = false
mdns-iface = ["eth0", "wlan0"]
allow = ["10.0.0.0/8"]
journal_max_size = 1024
timezone = "Europe/Moscow"
`)
	tests := []struct {
		name  string
		args  []string
		env   env
		check func(c daemon.Config) bool
	}{
		{"file over default", []string{"--config", file}, env{},
			func(c daemon.Config) bool {
				return c.Listen == "127.0.0.1:9001" && c.SyncInterval == 30*time.Second && c.Upstream == "https://file.example" &&
					!c.MDNS && reflect.DeepEqual(c.MDNSIfaces, []string{"eth0", "wlan0"}) && c.JournalMaxSize == 1024 &&
					c.Timezone.String() == "Europe/Moscow" &&
					reflect.DeepEqual(c.Allow, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
			}},
		{"env over file", []string{"--config", file},
			env{"SHOPBRIDGE_LISTEN": ":9002", "SHOPBRIDGE_SYNC_INTERVAL": "1m", "SHOPBRIDGE_MDNS": "TRUE", "SHOPBRIDGE_MDNS_IFACE": "br0",
				"SHOPBRIDGE_ALLOW": "192.168.1.7, 172.16.0.0/12", "SHOPBRIDGE_UPSTREAM": ""},
			func(c daemon.Config) bool {
				return c.Listen == ":9002" && c.SyncInterval == time.Minute && c.MDNS && reflect.DeepEqual(c.MDNSIfaces, []string{"br0"}) &&
					reflect.DeepEqual(c.Allow, []netip.Prefix{netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("172.16.0.0/12")}) &&
					c.Upstream == "" && c.JournalMaxSize == 1024
			}},
		{"flag over env", []string{"--config", file, "--listen=:9003", "-sync-interval", "250ms", "--mdns=false", "--upstream", "http://flag.example:8080/crm/"},
			env{"SHOPBRIDGE_LISTEN": ":9002", "SHOPBRIDGE_SYNC_INTERVAL": "1m", "SHOPBRIDGE_MDNS": "true"},
			func(c daemon.Config) bool {
				return c.Listen == ":9003" && c.SyncInterval == 250*time.Millisecond && !c.MDNS && c.Upstream == "http://flag.example:8080/crm"
			}},
		{"config file from env", nil, env{"SHOPBRIDGE_CONFIG": file},
			func(c daemon.Config) bool { return c.ConfigFile == file && c.Listen == "127.0.0.1:9001" }},
		{"config flag over env", []string{"--config", file}, env{"SHOPBRIDGE_CONFIG": "/nonexistent/x.toml"},
			func(c daemon.Config) bool { return c.ConfigFile == file }},
		{"bare bool flag", []string{"--config", file, "--mdns"}, env{},
			func(c daemon.Config) bool { return c.MDNS }},
		{"tokens", []string{"--config", file, "--terminal-token", "t0k", "--admin-token=adm"}, env{"SHOPBRIDGE_UPSTREAM_TOKEN": "up"},
			func(c daemon.Config) bool {
				return c.TerminalToken == "t0k" && c.AdminToken == "adm" && c.UpstreamToken == "up"
			}},
		{"sizes and levels", []string{"--config", file, "--journal-max-size", "2 GiB", "--log-level", "DEBUG", "--journal-max-age", "0s"}, env{},
			func(c daemon.Config) bool {
				return c.JournalMaxSize == 2<<30 && c.LogLevel == "debug" && c.JournalMaxAge == 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.args, tt.env)
			if !tt.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestRunBadValues(t *testing.T) {
	good := writeConfig(t, "")
	badFile := func(text string) string { return writeConfig(t, text) }
	missing := filepath.Join(t.TempDir(), "missing.toml")
	tests := []struct {
		name string
		args []string
		env  env
		want []string // the error must name these
	}{
		{"listen no port", []string{"--listen", "8480"}, nil, []string{"--listen", `"8480"`}},
		{"listen bad port", []string{"--listen=:99999"}, nil, []string{"--listen", "99999"}},
		{"listen host name", []string{"--listen", "shop.example:80"}, nil, []string{"--listen", "shop.example"}},
		{"data empty", []string{"--data", " "}, nil, []string{"--data", "empty"}},
		{"upstream scheme", []string{"--upstream", "ftp://x"}, nil, []string{"--upstream", "ftp://x"}},
		{"upstream no host", []string{"--upstream", "http://"}, nil, []string{"--upstream"}},
		{"sync interval no unit", []string{"--sync-interval", "10"}, nil, []string{"--sync-interval", `"10"`}},
		{"sync interval too short", []string{"--sync-interval", "50ms"}, nil, []string{"--sync-interval", "50ms"}},
		{"timezone", []string{"--timezone", "Mars/Olympus"}, nil, []string{"--timezone", "Mars/Olympus"}},
		{"mdns", []string{"--mdns=maybe"}, nil, []string{"--mdns", "maybe"}},
		{"name too long", []string{"--name", strings.Repeat("x", 64)}, nil, []string{"--name", "64"}},
		{"name empty", []string{"--name="}, nil, []string{"--name"}},
		{"allow bad CIDR", []string{"--allow", "10.0.0.0/33"}, nil, []string{"--allow", "10.0.0.0/33"}},
		{"allow word", []string{"--allow", "10.0.0.0/8,lan"}, nil, []string{"--allow", `"lan"`}},
		{"journal age", []string{"--journal-max-age", "-1h"}, nil, []string{"--journal-max-age"}},
		{"journal size", []string{"--journal-max-size", "10XB"}, nil, []string{"--journal-max-size", "10XB"}},
		{"journal size negative", []string{"--journal-max-size", "-5"}, nil, []string{"--journal-max-size"}},
		{"journal size overflow", []string{"--journal-max-size", "9999999999GiB"}, nil, []string{"--journal-max-size", "too large"}},
		{"log level", []string{"--log-level", "loud"}, nil, []string{"--log-level", "loud"}},
		{"unknown flag", []string{"--colour"}, nil, []string{"colour"}},
		{"flag without value", []string{"--listen"}, nil, []string{"listen"}},
		{"positional argument", []string{"serve"}, nil, []string{`"serve"`}},
		{"--mdns false is two arguments", []string{"--mdns", "false"}, nil, []string{`unexpected argument "false"`}},
		{"env sync interval", nil, env{"SHOPBRIDGE_SYNC_INTERVAL": "fast"}, []string{"SHOPBRIDGE_SYNC_INTERVAL", "fast"}},
		{"env listen", nil, env{"SHOPBRIDGE_LISTEN": "nowhere"}, []string{"SHOPBRIDGE_LISTEN", "nowhere"}},
		{"env empty listen", nil, env{"SHOPBRIDGE_LISTEN": ""}, []string{"SHOPBRIDGE_LISTEN"}},
		{"env mdns", nil, env{"SHOPBRIDGE_MDNS": "yes"}, []string{"SHOPBRIDGE_MDNS", "yes"}},
		{"env allow", nil, env{"SHOPBRIDGE_ALLOW": "everyone"}, []string{"SHOPBRIDGE_ALLOW"}},
		{"named config missing", []string{"--config", missing}, nil, []string{"config file", missing}},
		{"env config missing", nil, env{"SHOPBRIDGE_CONFIG": missing}, []string{"config file", missing}},
	}
	fileTests := []struct {
		name, text string
		want       []string
	}{
		{"file listen", `listen = "bad"`, []string{"key listen", "bad"}},
		{"file sync interval number", `sync_interval = 10`, []string{"key sync-interval", `"10"`}},
		{"file syntax", `listen = `, []string{"config file"}},
		{"file unknown key", `colour = "blue"`, []string{`unknown key "colour"`}},
		{"file service key", `service = true`, []string{`unknown key "service"`}},
		{"file config key", `config = "/etc/x"`, []string{`unknown key "config"`}},
		{"file table", "[upstream]\nurl = \"http://x\"", []string{"key upstream", "unsupported"}},
		{"file list of numbers", `allow = [10, 11]`, []string{"key allow", "list items must be strings"}},
		{"file date", `name = 2026-03-22`, []string{"key name", "unsupported"}},
		{"file bool for name", `name = true`, nil},
		{"file mdns string", `mdns = "sometimes"`, []string{"key mdns", "sometimes"}},
		{"file key twice", "sync_interval = \"1s\"\nsync-interval = \"2s\"\n", []string{"key sync-interval is given twice"}},
	}
	for _, ft := range fileTests {
		path := badFile(ft.text)
		want := append([]string{"config file " + path}, ft.want...)
		if ft.want == nil {
			// name = true becomes the name "true": allowed, not an error.
			if _, err := parseRunArgs([]string{"--config", path}, env{}.lookup, io.Discard); err != nil {
				t.Errorf("%s: %v", ft.name, err)
			}
			continue
		}
		tests = append(tests, struct {
			name string
			args []string
			env  env
			want []string
		}{ft.name, []string{"--config", path}, nil, want})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "config") && tt.env["SHOPBRIDGE_CONFIG"] == "" {
				args = append([]string{"--config", good}, args...)
			}
			_, err := parseRunArgs(args, tt.env.lookup, io.Discard)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseRunArgs(%q) = %v (%T), want a *usageError", args, err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for opt, want := range map[string]string{"listen": "SHOPBRIDGE_LISTEN", "sync-interval": "SHOPBRIDGE_SYNC_INTERVAL", "mdns-iface": "SHOPBRIDGE_MDNS_IFACE"} {
		if got := envName(opt); got != want {
			t.Errorf("envName(%q) = %q, want %q", opt, got, want)
		}
	}
}

func TestRunFlagsNameEveryOption(t *testing.T) {
	docs := map[string]flagDoc{}
	for _, d := range runFlags() {
		docs[d.Name] = d
	}
	for _, o := range append([]option{{name: "config"}}, options...) {
		d, ok := docs[o.name]
		if !ok {
			t.Errorf("the help does not name --%s", o.name)
			continue
		}
		if d.Usage == "" {
			t.Errorf("--%s has no help text", o.name)
		}
		if (d.Arg == "") != o.isBool && o.name != "config" {
			t.Errorf("--%s: argument name %q, but boolean %v", o.name, d.Arg, o.isBool)
		}
		if strings.Contains(d.Usage, "(default") {
			t.Errorf("--%s names its default in its text %q; the help shows Default once", o.name, d.Usage)
		}
	}
}

// TestFlagMessage: the flag package's errors come out in the --flag
// spelling of the help, saying what a good value looks like.
func TestFlagMessage(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("timeout", 3*time.Second, "")
	fs.Bool("json", false, "")
	fs.Int("limit", 10, "")
	fs.String("addr", "", "")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag --bogus"},
		{[]string{"-bogus"}, "unknown flag --bogus"},
		{[]string{"--addr"}, "flag --addr needs a value"},
		{[]string{"--timeout", "soon"}, `--timeout: want a duration such as 3s, got "soon"`},
		{[]string{"--json=maybe"}, `--json: want true or false, got "maybe"`},
		{[]string{"-limit", "many"}, `--limit: want a whole number, got "many"`},
	} {
		err := fs.Parse(tt.args)
		if err == nil {
			t.Fatalf("%q parsed", tt.args)
		}
		if got := flagMessage(fs, err); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.args, got, tt.want)
		}
	}
	if _, err := parseRunArgs([]string{"--bogus"}, env{}.lookup, io.Discard); err == nil || err.Error() != "unknown flag --bogus" {
		t.Errorf("run --bogus: %v", err)
	}
	if _, err := parseRunArgs([]string{"--help"}, env{}.lookup, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run --help: %v, want flag.ErrHelp", err)
	}
}

func FuzzParseConfigFile(f *testing.F) {
	for _, s := range []string{
		"listen = \":8480\"\nsync_interval = \"10s\"\nmdns = false\n",
		"allow = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\nmdns-iface = [\"eth0\"]\n",
		"journal_max_size = 1024\nname = 1.5\n",
		"[upstream]\nurl = \"x\"\n",
		"name = 2026-03-22T10:00:00Z\n",
		"allow = [[\"a\"]]\n",
		"a.b.c = 1\n",
		"listen = '''\nx'''\n",
		"\xff\xfe",
		"",
	} {
		f.Add([]byte(s))
	}
	known := map[string]bool{}
	for _, o := range options {
		known[o.name] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseConfigFile("fuzz.toml", data)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is a %T, not a *usageError", err, err)
			}
			if !strings.HasPrefix(err.Error(), "config file fuzz.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for k := range m {
			if !known[k] || k == "service" {
				t.Fatalf("accepted key %q", k)
			}
		}
	})
}
