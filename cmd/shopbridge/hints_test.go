package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNearest(t *testing.T) {
	names := optionNames()
	for _, tt := range []struct{ typo, want string }{
		{"upstrem", "upstream"},
		{"upstream-tokn", "upstream-token"},
		{"mdn", "mdns"},
		{"lisen", "listen"},
		{"sync_interval", "sync-interval"},
		{"tiemzone", "timezone"}, // a swap is one edit
		{"data", "data"},
		{"bogus", ""},
		{"colour", ""},
		{"x", ""},
	} {
		if got := nearest(tt.typo, names); got != tt.want {
			t.Errorf("nearest(%q) = %q, want %q", tt.typo, got, tt.want)
		}
	}
}

// TestHints: each mistake gets its fix in the one line it is reported in.
func TestHints(t *testing.T) {
	conf := func(text string) string {
		p := filepath.Join(t.TempDir(), "shopbridge.toml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"bool flag without =", []string{"--mdns", "false"}, `unexpected argument "false": a true/false flag takes its value after "=", as in --mdns=false`},
		{"bool flag without = true", []string{"--demo", "true", "--mdns=false"}, `as in --demo=true`},
		{"flag typo", []string{"--upstrem", "http://x"}, "unknown flag --upstrem (did you mean --upstream?)"},
		{"flag typo no near name", []string{"--bogus"}, "unknown flag --bogus"},
		{"config key typo", []string{"--config", conf(`upstrem = "http://crm.example"`)}, `unknown key "upstrem" (did you mean upstream?)`},
		{"config key typo underscores", []string{"--config", conf(`sync_intervl = "5s"`)}, `unknown key "sync_intervl" (did you mean sync-interval?)`},
		{"a word after a value flag is no bool hint", []string{"--name", "x", "false"}, `unexpected argument "false"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "--config") {
				args = append([]string{"--config", conf("")}, args...)
			}
			_, err := parseRunArgs(args, env{}.lookup, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseRunArgs(%q) = %v, want it to say %q", args, err, tt.want)
			}
			if tt.name == "flag typo no near name" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("a far name gets a guess: %v", err)
			}
			if tt.name == "a word after a value flag is no bool hint" && strings.Contains(err.Error(), "true/false") {
				t.Errorf("a value flag gets the boolean hint: %v", err)
			}
		})
	}
}

// TestUnknownEnv: a SHOPBRIDGE_* variable that names no setting is warned
// of, with the nearest setting; the settings and the tools' and tests' own
// variables are not.
func TestUnknownEnv(t *testing.T) {
	got := unknownEnv([]string{
		"SHOPBRIDGE_UPSTREM=http://crm.example", "SHOPBRIDGE_LISTEN=:1", "SHOPBRIDGE_CONFIG=/x", "SHOPBRIDGE_ADMIN_TOKEN=t",
		"SHOPBRIDGE_STRICT=1", "SHOPBRIDGE_VM_SEED=4", "SHOPBRIDGE_ADDR=127.0.0.1:1", "SHOPBRIDGE_FAKE_NOW=x",
		"SHOPBRIDGE_SCREENSHOTS=/d", "SHOPBRIDGE_CHROMIUM=/c", "SHOPBRIDGE_BIN=/b", "SHOPBRIDGE_E2E_REGISTER=1",
		"SHOPBRIDGE_DISCOVERY_ROLE=r", "PATH=/bin", "SHOPBRIDGE_WHATEVER=1", "XSHOPBRIDGE_UPSTREM=1",
	})
	if len(got) != 2 {
		t.Fatalf("warnings %q, want two: SHOPBRIDGE_UPSTREM and SHOPBRIDGE_WHATEVER", got)
	}
	if !strings.Contains(got[0], "SHOPBRIDGE_UPSTREM names no setting") || !strings.Contains(got[0], "did you mean SHOPBRIDGE_UPSTREAM?") {
		t.Errorf("typo warning: %q", got[0])
	}
	if !strings.Contains(got[1], "SHOPBRIDGE_WHATEVER names no setting") || strings.Contains(got[1], "did you mean") {
		t.Errorf("unknown variable warning: %q", got[1])
	}
	for _, o := range optionNames() {
		if w := unknownEnv([]string{envName(o) + "=x"}); len(w) != 0 {
			t.Errorf("the setting %s is warned of: %q", envName(o), w)
		}
	}
}
