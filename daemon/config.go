package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is everything `shopbridge run` is told, after flags, environment,
// config file and defaults have been merged (in that order of precedence;
// cmd/shopbridge's config.go reads them).
type Config struct {
	ConfigFile     string
	Listen         string
	HTTPSListen    string // "" off (https-listen none)
	TLSCert        string // the shop's certificate; "" a self-signed one in DATA/tls
	TLSKey         string
	DataDir        string
	Upstream       string
	UpstreamToken  string
	SyncInterval   time.Duration
	PushInFlight   int
	Timezone       *time.Location
	MDNS           bool
	Name           string
	MDNSIfaces     []string
	TerminalToken  string
	AdminToken     string
	Allow          []netip.Prefix // nil: the default private ranges
	AdminHosts     []string       // further names operator requests may carry in Host (docs/security.md)
	JournalMaxAge  time.Duration
	JournalMaxSize int64
	Demo           *DemoData // seed an empty store with these sample bills; nil: none
	Service        bool      // run under the OS service manager
	LogLevel       string
	// Scheduled backups (backup.go): BackupDir "" is off (backup-dir none).
	BackupDir   string
	BackupEvery time.Duration
	BackupKeep  int

	// ConfigRead tells whether ConfigFile was read (a missing default
	// file is not); the start-up log names it or says "none".
	ConfigRead bool
	// Warnings are problems that do not stop the start (an environment
	// variable SHOPBRIDGE_* naming no setting); the daemon logs them.
	Warnings []string
}

// Validate refuses a Config the daemon cannot run with: half a pair of TLS
// files, or files without an HTTPS listener to serve them.
func (c *Config) Validate() error {
	switch {
	case c.TLSCert != "" && c.TLSKey == "":
		return fmt.Errorf("tls-cert is set (%s) without tls-key: give both, or neither for a self-signed certificate", c.TLSCert)
	case c.TLSKey != "" && c.TLSCert == "":
		return fmt.Errorf("tls-key is set (%s) without tls-cert: give both, or neither for a self-signed certificate", c.TLSKey)
	case c.TLSCert != "" && c.HTTPSListen == "":
		return errors.New("tls-cert is set but https-listen is none: remove tls-cert and tls-key, or set https-listen")
	}
	return nil
}
