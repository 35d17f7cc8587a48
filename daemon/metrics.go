package daemon

import (
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/discovery"
	"github.com/shopbridge/shopbridge/storage"
)

// The daemon's own families: what a chain's Prometheus needs to tell one
// shop from another (the build), to tell a restart from an outage, and the
// two states only the daemon sees whole (parked receipts, mDNS). The alert
// rules and dashboards of packaging/monitoring use them; docs/monitoring.md
// lists them.
var (
	buildInfo      = shopbridge.Metric{Name: "shopbridge_build_info", Type: "gauge", Help: "Always 1; the labels say which build runs."}
	startTime      = shopbridge.Metric{Name: "shopbridge_start_time_seconds", Type: "gauge", Help: "Unix time the daemon started."}
	parkedReceipts = shopbridge.Metric{Name: "shopbridge_parked_receipts", Type: "gauge", Help: "Receipts the upstream refused, waiting for the operator."}
	mdnsEnabled    = shopbridge.Metric{Name: "shopbridge_mdns_enabled", Type: "gauge", Help: "Whether mDNS announcement is configured on (1) or off (0, --mdns=false)."}
	mdnsUp         = shopbridge.Metric{Name: "shopbridge_mdns_up", Type: "gauge", Help: "Whether the registers can find this daemon: 1 while mDNS announces, else 0."}
)

// daemonMetrics writes the daemon's own families.
type daemonMetrics struct {
	store   *storage.Store
	started time.Time
	mdns    bool
	// announcer is set once discovery has started (after the HTTP server
	// serves, so a scrape may come before it).
	announcer atomic.Pointer[discovery.Announcer]
}

func (m *daemonMetrics) WriteMetrics(w io.Writer) {
	buildInfo.Header(w)
	buildInfo.Sample(w, "", 1, "version", shopbridge.Version, "commit", shopbridge.Commit, "goversion", runtime.Version())
	startTime.Write(w, float64(m.started.UnixNano())/1e9)
	// A read transaction works while the store is degraded; only a closed
	// store fails it, and then the family is better absent than 0.
	if st, err := m.store.Stats(); err == nil {
		parkedReceipts.Write(w, float64(st.Parked))
	}
	enabled, up := 0.0, 0.0
	if m.mdns {
		enabled = 1
		if a := m.announcer.Load(); a != nil && a.Status().State == "announcing" {
			up = 1
		}
	}
	mdnsEnabled.Write(w, enabled)
	mdnsUp.Write(w, up)
}
