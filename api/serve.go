package api

import (
	"context"
	"crypto/tls"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// ShutdownGrace is how long Close lets requests in flight finish.
const ShutdownGrace = 10 * time.Second

// Open serves the routes on ln, the registers' plain port, and on tlsLn,
// the HTTPS console's (nil: none), each from a goroutine of its own, and
// returns at once: the caller binds both first, so that a taken port is
// its error before anything serves. From here the Server owns the
// listeners; Close closes them.
func (s *Server) Open(ln, tlsLn net.Listener) {
	srv := &http.Server{
		Handler: s,
		// Headers, and a body other than a receipt's (which has a deadline
		// of its own, see BodyTime), within 5 s: one deadline for both
		// saves net/http a timer change on every request. The TLS
		// handshake gets the same 5 s (net/http's smallest timeout).
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes, // the handler's own limits answer with the Evotor body
		ConnContext:       s.ConnContext,
		ErrorLog:          httpErrorLog(s.logger),
	}
	s.http, s.serveErr = srv, make(chan error, 2)
	plain := Listener(ln)
	go func() { s.serveErr <- srv.Serve(plain) }()
	if tlsLn != nil {
		// Not through Listener: it rewrites net/http's own plain-text
		// errors, which over TLS pass encrypted; the registers' plain
		// port keeps the Evotor body for them.
		go func() { s.serveErr <- srv.Serve(tlsLn) }()
	}
}

// Done reports a serving failure after Open: what the first listener to
// stop serving returned.
func (s *Server) Done() <-chan error { return s.serveErr }

// Close stops accepting, lets requests in flight finish (for ShutdownGrace
// at most) and closes the listeners. A second Close does nothing.
func (s *Server) Close() error {
	if s.http == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := s.http.Shutdown(ctx)
	s.http = nil
	return err
}

// TLSListener is ln with TLS and cert, for Open's tlsLn. HTTP/1.1 only, as
// on the plain port: one behaviour (timeouts, deadlines, limits) for both
// listeners.
func TLSListener(ln net.Listener, cert tls.Certificate) net.Listener {
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert},
		MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
}

// httpErrorLog is net/http's error log as slog lines at warn level, but a
// failed TLS handshake (a browser that has not accepted the self-signed
// certificate yet, a scanner) at debug: one comes with every first visit
// and there is nothing to do about it.
func httpErrorLog(l *slog.Logger) *log.Logger { return log.New(httpLogWriter{l}, "", 0) }

type httpLogWriter struct{ l *slog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
