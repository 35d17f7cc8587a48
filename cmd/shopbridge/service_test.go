package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestAbsPathFlags(t *testing.T) {
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"separate value", []string{"--config", "x.toml", "--listen", ":1"}, []string{"--config", filepath.Join(wd, "x.toml"), "--listen", ":1"}},
		{"equals", []string{"--data=store"}, []string{"--data=" + filepath.Join(wd, "store")}},
		{"single dash", []string{"-data", "/abs"}, []string{"-data", "/abs"}},
		{"other flags untouched", []string{"--name", "data", "--mdns=false"}, []string{"--name", "data", "--mdns=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := absPathFlags(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := absPathFlags([]string{"--config"}); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing value: %v", err)
	}
}

func TestLoopbackURL(t *testing.T) {
	for listen, want := range map[string]string{
		":8480":          "http://127.0.0.1:8480",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"[::]:9000":      "http://127.0.0.1:9000",
		"10.0.0.5:8480":  "http://10.0.0.5:8480",
		"localhost:8480": "http://127.0.0.1:8480",
	} {
		if got := loopbackURL(listen); got != want {
			t.Errorf("loopbackURL(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestOutboxFromDaemon(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    int
		wantErr string
	}{
		{"waiting", 200, `{"version":"x","outbox":7}`, 7, ""},
		{"empty", 200, `{"outbox":0}`, 0, ""},
		{"no field", 200, `{"receipts":3}`, 0, "no outbox field"},
		{"forbidden", 403, `{}`, 0, "403"},
		{"garbage", 200, `<html>`, 0, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			n, err := outboxFromDaemon(srv.URL)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || n != tt.want {
				t.Fatalf("got %d, %v; want %d", n, err, tt.want)
			}
		})
	}
}

func TestServiceCommandsUsage(t *testing.T) {
	for _, args := range [][]string{{"start", "x"}, {"status", "x"}, {"uninstall", "--bogus"}, {"uninstall", "x"}, {"service-hook"}, {"service-hook", "other"}} {
		if code := mustLookup(t, args[0]).run(args[1:]); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// mustLookup is the command called name, or the test fails.
func mustLookup(t *testing.T, name string) command {
	t.Helper()
	c, ok := lookup(name)
	if !ok {
		t.Fatalf("no command %q", name)
	}
	return c
}
