package api

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/shopbridge/shopbridge"
)

// toHTTPS sends a console request from another PC over plain HTTP to the
// HTTPS listener, and reports whether it did. A GET or HEAD (a typed
// address, a bookmark, a link) is redirected (308) to the same path and
// query there. Any other method is refused (403) rather than redirected: it
// already carried its token, cookie or form in clear, and a 308 would make
// the browser post it again and the action happen as if that were fine.
// Loopback keeps plain HTTP: nothing crosses the LAN, and the CLI and a
// browser on this PC need no certificate. /metrics is not sent (a
// Prometheus scraping it with a token keeps working; see
// docs/security.md). The Host was checked before (hostCheck), so the
// redirect names this machine only.
func (s *Server) toHTTPS(w http.ResponseWriter, r *http.Request) bool {
	if r.TLS != nil || s.cfg.HTTPS == nil || clientAddr(r).IsLoopback() {
		return false
	}
	target := s.httpsURL(r, r.URL.RequestURI())
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.Header().Set("Location", target)
		w.Header().Set("Cache-Control", "no-store") // the port may change with the settings
		w.WriteHeader(http.StatusPermanentRedirect)
		return true
	}
	s.failAdmin(w, r, shopbridge.Errorf(shopbridge.EFORBIDDEN, "scheme",
		"operator requests from another computer go over HTTPS: use %s (certificate SHA-256 %s)", target, s.cfg.HTTPS.Fingerprint))
	return true
}

// httpsURL is uri on the HTTPS listener, under the host name r came with.
func (s *Server) httpsURL(r *http.Request, uri string) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return "https://" + net.JoinHostPort(trimBrackets(host), strconv.Itoa(s.cfg.HTTPS.Port)) + uri
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// consoleHTTPSURL is where another computer opens the console, for the
// help page: under the name this page was opened with, unless that is
// loopback, which means nothing elsewhere; then this PC's host name.
func (s *Server) consoleHTTPSURL(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = trimBrackets(host)
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" || host == "" {
		host = "THIS-PC"
		if hn, err := os.Hostname(); err == nil && hn != "" {
			host, _, _ = strings.Cut(hn, ".")
		}
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.HTTPS.Port)) + "/admin/"
}
