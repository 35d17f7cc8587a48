package main

import (
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
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			host, port = "", "8480"
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, port)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// adminGet calls an operator endpoint of the running daemon.
func adminGet(base, path string, timeout time.Duration) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
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
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s%s: %s: %s", base, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

func addrFlag(fs *flag.FlagSet) *string {
	return fs.String("addr", "", "daemon address (default: from the config, 127.0.0.1:8480)")
}
