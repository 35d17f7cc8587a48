package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseExecStart(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"plain", "/usr/bin/shopbridge run --service", []string{"/usr/bin/shopbridge", "run", "--service"}},
		{"kardianos quoting", `/opt/shop\x20bridge/shopbridge "run" "--service" "--listen" ":9000"`, []string{"/opt/shop bridge/shopbridge", "run", "--service", "--listen", ":9000"}},
		{"quoted space", `/usr/bin/shopbridge "run" "--name" "shop on till 1"`, []string{"/usr/bin/shopbridge", "run", "--name", "shop on till 1"}},
		{"escaped quote", `/x "a\"b"`, []string{"/x", `a"b`}},
		{"dollar and percent", `/x "pa$$s%%1"`, []string{"/x", "pa$s%1"}},
		{"single quotes", `/x 'a b'`, []string{"/x", "a b"}},
		{"empty arg", `/x ""`, []string{"/x", ""}},
		{"extra blanks", "  /x \t a  ", []string{"/x", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExecStart(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseExecStartErrors(t *testing.T) {
	for _, line := range []string{`/x "open`, `/x 'open`, `/x a\`, `/x \x4`, `/x \xZZ`} {
		if _, err := ParseExecStart(line); err == nil || !strings.Contains(err.Error(), "ExecStart") {
			t.Errorf("ParseExecStart(%q) = %v, want an ExecStart error", line, err)
		}
	}
}

// TestRenderRoundTrip checks that what Install writes reads back as the
// flags it was given, whatever characters they hold.
func TestRenderRoundTrip(t *testing.T) {
	args := []string{"--listen", ":9000", "--upstream-token", `a$b%c"d e`, "--name", "касса 1", "--data", "/srv/shop data"}
	full := escapeUnitArgs(append([]string{"run", ServiceFlag}, args...))
	unit := RenderUnit("/opt/shop bridge/shopbridge", full, "/srv/shop data")
	line, err := unitExecStart(unit)
	if err != nil {
		t.Fatal(err)
	}
	words, err := ParseExecStart(line)
	if err != nil {
		t.Fatal(err)
	}
	if words[0] != "/opt/shop bridge/shopbridge" {
		t.Fatalf("executable %q", words[0])
	}
	got, err := runFlags(words)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, args) {
		t.Fatalf("run flags %q, want %q", got, args)
	}
	if !strings.Contains(unit, `ReadWritePaths="/srv/shop data"`+"\n") {
		t.Fatalf("unit lacks ReadWritePaths for a custom data directory:\n%s", unit)
	}
	if strings.Contains(RenderUnit("/usr/bin/shopbridge", nil, LinuxDataDir), "ReadWritePaths") {
		t.Fatal("default data directory got a ReadWritePaths line")
	}
}

func TestUnitRequirements(t *testing.T) {
	unit := RenderUnit("/usr/bin/shopbridge", []string{"run", ServiceFlag}, "")
	for _, want := range []string{
		"Restart=always", "RestartSec=2s", "User=shopbridge", "StateDirectory=shopbridge",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
		`ExecStart=/usr/bin/shopbridge "run" "--service"`, "WantedBy=multi-user.target",
	} {
		if !strings.Contains(unit, want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
}

// TestUnitVerifies runs systemd-analyze verify on the rendered unit.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt install systemd): unit not verified")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "shopbridge")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, Name+".service")
	if err := os.WriteFile(unit, []byte(RenderUnit(exe, []string{"run", ServiceFlag}, "/srv/shop bridge")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestRunFlags(t *testing.T) {
	got, err := runFlags([]string{`C:\Program Files\shopbridge\shopbridge.exe`, "run", "--service", "--listen", ":1"})
	if err != nil || !reflect.DeepEqual(got, []string{"--listen", ":1"}) {
		t.Fatalf("runFlags = %q, %v", got, err)
	}
	if _, err := runFlags([]string{"/bin/other", "serve"}); err == nil {
		t.Fatal("no error for a command line without run")
	}
}

func FuzzParseExecStart(f *testing.F) {
	for _, s := range []string{`/x "a b" c`, `/x\x20y 'q' "$$" %%`, `"`, `\`, `\x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := ParseExecStart(line)
		if err != nil {
			return
		}
		// Whatever parses must survive a write by RenderUnit and a read.
		if len(words) == 0 || strings.ContainsAny(strings.Join(words, ""), "\n\r") {
			return
		}
		// The executable path is ours (kardianos only escapes its spaces).
		unit := RenderUnit("/usr/bin/shopbridge", escapeUnitArgs(words[1:]), "")
		l, err := unitExecStart(unit)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseExecStart(l)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", l, err)
		}
		if !reflect.DeepEqual(again[1:], words[1:]) {
			t.Fatalf("round trip %q -> %q", words, again)
		}
	})
}
