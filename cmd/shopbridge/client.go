package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge/daemon"
	"github.com/shopbridge/shopbridge/daemon/service"
)

// daemonFlags are the flags of the operator commands that find the running
// daemon: --addr, else SHOPBRIDGE_ADDR, else the loopback side of the listen
// address run would use (its --config, SHOPBRIDGE_* and config file).
type daemonFlags struct{ addr, config *string }

func (c *cmdFlags) daemonFlags() daemonFlags {
	return daemonFlags{
		addr: c.String("addr", "", "where the daemon answers, `HOST:PORT` or a URL "+
			"(default: SHOPBRIDGE_ADDR, else the loopback side of the listen address of --config, else of the installed service, else of the default config: 127.0.0.1:8480)"),
		config: c.String("config", "", "the `PATH` of the config file run reads, for the daemon's listen address "+
			"(default: SHOPBRIDGE_CONFIG, else "+defaultConfigFile()+")"),
	}
}

// runConfig is the configuration run would use with this --config and the
// extra run flags given.
func (d daemonFlags) runConfig(extra ...string) (daemon.Config, error) {
	var args []string
	if *d.config != "" {
		args = append(args, "--config", *d.config)
	}
	return loadRunConfig(append(args, extra...))
}

// url is the base URL of the running daemon: --addr, else SHOPBRIDGE_ADDR,
// else the listen address of the config given with --config, else that of
// the installed service (its flags and the config file they name), else
// that of the default config.
func (d daemonFlags) url() string {
	addr := *d.addr
	if addr == "" {
		addr = os.Getenv("SHOPBRIDGE_ADDR")
	}
	if addr == "" {
		listen := ":8480"
		if cfg, err := d.runConfig(); err == nil {
			listen = cfg.Listen
		}
		if *d.config == "" {
			if cfg, err := installedConfig(); err == nil {
				listen = cfg.Listen
			}
		}
		return loopbackURL(listen)
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// installedConfig is the configuration the installed service runs with:
// its command line's flags over its config file and the defaults.
func installedConfig() (daemon.Config, error) {
	args, err := service.InstalledArgs()
	if err != nil {
		return daemon.Config{}, err
	}
	cfg, err := loadRunConfig(args)
	if err != nil {
		return daemon.Config{}, fmt.Errorf("the installed service's flags: %w", err)
	}
	return cfg, nil
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
		return nil, &unreachableError{base: base, err: err}
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

// unreachableError is no answer at all from the daemon: it does not run, or
// not at that address.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the daemon at %s: %v (is it running? see --addr)", e.base, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }
