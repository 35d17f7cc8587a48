package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge/daemon"
)

// daemonURL is the base URL of the running daemon for operator commands: the
// --addr flag, else SHOPBRIDGE_ADDR, else the loopback side of the listen
// address the daemon would use (flag, env, config file, default).
func daemonURL(addr string) string {
	if addr == "" {
		addr = os.Getenv("SHOPBRIDGE_ADDR")
	}
	if addr == "" {
		listen := ":8480"
		if cfg, err := daemon.ParseRunArgs(nil); err == nil {
			listen = cfg.Listen
		}
		return loopbackURL(listen)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// loopbackURL is the base URL of a daemon listening on listen, reached over
// loopback unless it listens on one address only.
func loopbackURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "", "8480"
	}
	if ip := net.ParseIP(host); host == "" || ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// adminGet calls an operator endpoint of the running daemon.
func adminGet(base, path string, timeout time.Duration) (*http.Response, error) {
	return adminDo(http.MethodGet, base, path, timeout)
}

// adminDo calls an operator endpoint of the running daemon, with the admin
// token from SHOPBRIDGE_ADMIN_TOKEN when set. Any answer but 200 is an
// error carrying the daemon's reason (its Evotor error body) or the body.
func adminDo(method, base, path string, timeout time.Duration) (*http.Response, error) {
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		return nil, err
	}
	if t := os.Getenv("SHOPBRIDGE_ADMIN_TOKEN"); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the daemon at %s: %w (is it running? see --addr)", base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Errors []struct {
			Reason string `json:"reason"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 && e.Errors[0].Reason != "" {
		return nil, fmt.Errorf("%s %s%s: %s (%s)", method, base, path, e.Errors[0].Reason, resp.Status)
	}
	return nil, fmt.Errorf("%s %s%s: %s: %s", method, base, path, resp.Status, strings.TrimSpace(string(b)))
}

func addrFlag(fs *flag.FlagSet) *string {
	return fs.String("addr", "", "daemon address (default: from the config, 127.0.0.1:8480)")
}
