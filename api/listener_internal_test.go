package api

import "testing"

func TestGoAnswer(t *testing.T) {
	cases := []struct {
		name   string
		write  string
		status int
		detail string
		ok     bool
	}{
		{"400", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request", 400, "", true},
		{"400 with detail", "HTTP/1.1 400 Bad Request: malformed Host header\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: malformed Host header", 400, "malformed Host header", true},
		{"431", "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large", 431, "", true},
		{"501", "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nUnsupported transfer encoding", 501, "", true},
		{"417", "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n", 417, "", true},
		{"417 to HTTP/1.0", "HTTP/1.0 417 Expectation Failed\r\nConnection: close\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n", 417, "", true},
		{"an error shape as HTTP/1.0", "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request", 0, "", false},
		{"a handler's 400 (Date, Content-Length)", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\nContent-Length: 3\r\n\r\nbad", 0, "", false},
		{"our own 404", "HTTP/1.1 404 Not Found\r\nContent-Length: 70\r\nContent-Type: application/json; charset=utf-8\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\n{\"errors\":[]}", 0, "", false},
		{"a 200", "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nok", 0, "", false},
		{"a chunked tail that begins like one", "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nx\r\n0\r\n\r\n", 0, "", false},
		{"a 417 with more headers", "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nX-Other: 1\r\nContent-Length: 0\r\n\r\n", 0, "", false},
		{"a 417 with a body", "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 0\r\n\r\nmore", 0, "", false},
		{"short", "HTTP/1.1 4", 0, "", false},
	}
	for _, c := range cases {
		status, detail, ok := goAnswer([]byte(c.write))
		if ok != c.ok || status != c.status || detail != c.detail {
			t.Errorf("%s: goAnswer = %d %q %v, want %d %q %v", c.name, status, detail, ok, c.status, c.detail, c.ok)
		}
	}
}
