package main

import (
	"io"
	"strings"
	"testing"
)

// The HTTPS settings: the default follows listen's host (no LAN address
// opened that listen does not open) and its port 0; half a pair of files is
// refused with one line naming both settings.
func TestHTTPSSettings(t *testing.T) {
	good := writeConfig(t, "")
	for _, tt := range []struct {
		name string
		args []string
		env  env
		want string // HTTPSListen
	}{
		{"default", nil, nil, ":8443"},
		{"listen on one address", []string{"--listen", "192.168.1.5:8480"}, nil, "192.168.1.5:8443"},
		{"listen loopback", []string{"--listen", "127.0.0.1:9000"}, nil, "127.0.0.1:8443"},
		{"listen any port", []string{"--listen", "127.0.0.1:0"}, nil, "127.0.0.1:0"},
		{"listen IPv6", []string{"--listen", "[::1]:8480"}, nil, "[::1]:8443"},
		{"given", []string{"--https-listen", ":9443"}, nil, ":9443"},
		{"none", []string{"--https-listen", "none"}, nil, ""},
		{"env none", nil, env{"SHOPBRIDGE_HTTPS_LISTEN": "none"}, ""},
		{"env empty is the default", nil, env{"SHOPBRIDGE_HTTPS_LISTEN": ""}, ":8443"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, append([]string{"--config", good}, tt.args...), tt.env)
			if c.HTTPSListen != tt.want {
				t.Errorf("HTTPSListen = %q, want %q", c.HTTPSListen, tt.want)
			}
		})
	}
	c := mustParse(t, []string{"--config", good, "--tls-cert", "/etc/shop/c.pem", "--tls-key", "/etc/shop/k.pem"}, nil)
	if c.TLSCert != "/etc/shop/c.pem" || c.TLSKey != "/etc/shop/k.pem" {
		t.Errorf("tls files: %q %q", c.TLSCert, c.TLSKey)
	}
	file := writeConfig(t, "tls_cert = \"/etc/shop/c.pem\"\ntls-key = \"/etc/shop/k.pem\"\nhttps_listen = \"10.0.0.2:443\"\n")
	if c := mustParse(t, []string{"--config", file}, nil); c.TLSCert != "/etc/shop/c.pem" || c.HTTPSListen != "10.0.0.2:443" {
		t.Errorf("from the file: %+v", c)
	}

	for _, tt := range []struct {
		name string
		args []string
		env  env
		want []string
	}{
		{"cert without key", []string{"--tls-cert", "/etc/shop/c.pem"}, nil, []string{"tls-cert", "/etc/shop/c.pem", "without tls-key"}},
		{"key without cert", nil, env{"SHOPBRIDGE_TLS_KEY": "/etc/shop/k.pem"}, []string{"tls-key", "/etc/shop/k.pem", "without tls-cert"}},
		{"files but no listener", []string{"--tls-cert", "c", "--tls-key", "k", "--https-listen", "none"}, nil, []string{"https-listen is none"}},
		{"bad address", []string{"--https-listen", "8443"}, nil, []string{"--https-listen", `"8443"`}},
		{"host name", []string{"--https-listen", "shop.example:443"}, nil, []string{"--https-listen", "shop.example"}},
		{"listen on 8443", []string{"--listen", ":8443"}, nil, []string{"https-listen", "listen is :8443"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRunArgs(append([]string{"--config", good}, tt.args...), tt.env.lookup, io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			if _, ok := err.(*usageError); !ok || strings.Contains(err.Error(), "\n") {
				t.Errorf("not one usage line: %T %q", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}
