package api

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Listener wraps the daemon's listener so that the answers net/http writes
// by itself, before any handler runs, carry the Evotor error body too.
//
// net/http answers a request it cannot parse on its own and offers no hook
// for it (golang/go#25116 was closed without one): a request line or headers
// over MaxHeaderBytes (431), a malformed request line, header or Host (400),
// a Transfer-Encoding it does not know (501), an HTTP version it does not
// speak (505), each as one plain-text write straight to the connection, and
// an Expect other than 100-continue (417, empty body). The connections
// Listener returns recognize exactly those writes and send the same status
// with the Evotor body instead (as HTTP/1.1, which net/http's own errors
// are too). Everything a handler writes passes through
// untouched; it cannot look like them (see goAnswer).
//
// Still without a body: a request whose headers do not arrive within the
// server's ReadHeaderTimeout, or that the client abandons, gets no answer at
// all (net/http closes the connection); there is nothing to rewrite.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c}, nil
}

type conn struct {
	net.Conn
	read, write deadline
}

func (c *conn) SetReadDeadline(t time.Time) error {
	return c.read.set(t, true, c.Conn.SetReadDeadline)
}

// SetWriteDeadline is applied when the next Write starts, unless t is
// near or past: net/http sets WriteTimeout's deadline after reading each
// request and clears it after each answer, so a connection's timer would
// move twice a request.
func (c *conn) SetWriteDeadline(t time.Time) error {
	return c.write.set(t, false, c.Conn.SetWriteDeadline)
}

// SetDeadline sets both deadlines exactly.
func (c *conn) SetDeadline(t time.Time) error {
	c.read.exact(t)
	c.write.exact(t)
	return c.Conn.SetDeadline(t)
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.write.apply(c.Conn.SetWriteDeadline); err != nil {
		return 0, err
	}
	if status, detail, ok := goAnswer(p); ok {
		if _, err := c.Conn.Write(evotorAnswer(status, detail)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite keeps net/http's half-close after a 431 (closeWriteAndWait),
// which it only does for connections that have one.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// goErrorHeaders follows the status line of net/http's own error answers
// (server.go, conn.serve), the same since Go 1.6.
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// goExpectFailed is the status line of net/http's answer to an Expect it
// does not meet (sendExpectationFailed), after the request's HTTP version.
const goExpectFailed = " 417 Expectation Failed\r\n"

// goAnswer reports whether p is one of net/http's own answers, with its
// status and net/http's detail text (as in "400 Bad Request: malformed Host
// header"). A handler's answer never matches: net/http adds a Date header to
// every answer of a handler, which the error answers lack, and no handler
// here answers 417; nor does a body: the shapes need CRLFs, which JSON has
// only between tokens, and end where the write ends.
func goAnswer(p []byte) (status int, detail string, ok bool) {
	if len(p) < 13 || !bytes.HasPrefix(p, []byte("HTTP/1.")) || (p[9] != '4' && p[9] != '5') {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(p[9:12]))
	if err != nil || p[12] != ' ' {
		return 0, "", false
	}
	if (p[7] == '0' || p[7] == '1') && bytes.HasPrefix(p[8:], []byte(goExpectFailed)) {
		// Connection, Date, Content-Length: 0, nothing after.
		head := p[8+len(goExpectFailed):]
		for len(head) > 2 {
			i := bytes.Index(head, []byte("\r\n"))
			if i < 0 {
				return 0, "", false
			}
			name, _, found := bytes.Cut(head[:i], []byte(": "))
			if !found || (string(name) != "Connection" && string(name) != "Date" && string(name) != "Content-Length") {
				return 0, "", false
			}
			head = head[i+2:]
		}
		return status, "", string(head) == "\r\n"
	}
	line, rest, found := bytes.Cut(p, []byte("\r\n"))
	if !found || p[7] != '1' || !bytes.HasPrefix(rest, []byte(goErrorHeaders[2:])) {
		return 0, "", false
	}
	if body := rest[len(goErrorHeaders)-2:]; bytes.ContainsAny(body, "\r\n") {
		return 0, "", false
	}
	if _, d, found := bytes.Cut(line[13:], []byte(": ")); found {
		detail = string(d)
	}
	return status, detail, true
}

// evotorAnswer is the Evotor error body for one of net/http's own answers;
// the connection closes after it, as net/http's would.
func evotorAnswer(status int, detail string) []byte {
	code, subject, reason := CodeSyntax, "request", "the request is not valid HTTP/1.1 (request line, headers or framing)"
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		code, subject, reason = CodeHeaders, "header", "the request line and headers are over the 1 MiB limit"
	case http.StatusExpectationFailed:
		code, subject, reason = CodeExpect, "Expect", "the Expect header is not supported (only 100-continue)"
	case http.StatusNotImplemented:
		code, subject, reason = CodeEncoding, "Transfer-Encoding", "the Transfer-Encoding is not supported (only chunked)"
	case http.StatusHTTPVersionNotSupported:
		code, subject, reason = CodeVersion, "request", "the HTTP version is not supported (use HTTP/1.1)"
	case http.StatusBadRequest:
		// net/http's details are fixed phrases about the request,
		// never addresses or internals.
		switch detail {
		case "missing required Host header", "malformed Host header":
			subject, reason = "Host", "the request is not valid HTTP/1.1: "+detail
		case "invalid header name", "invalid header value":
			subject, reason = "header", "the request is not valid HTTP/1.1: "+detail
		case "":
		default:
			reason = "the request is not valid HTTP/1.1: " + detail
		}
	}
	body := errorJSON(code, reason, subject)
	b := make([]byte, 0, 160+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(append(append(b, ' '), http.StatusText(status)...), "\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}
