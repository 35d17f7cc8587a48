package api

import (
	"net/http"
	"testing"
)

// clientHost must name clients in the journal as clientAddr does for the
// allow list, without its allocation.
func TestClientHost(t *testing.T) {
	for _, remote := range []string{"127.0.0.1:5000", "192.168.1.20:80", "[::1]:443", "[fe80::1%eth0]:8480",
		"[::ffff:10.0.0.7]:1234", "[2001:db8::5]:1"} {
		want := clientAddr(&http.Request{RemoteAddr: remote}).String()
		if got := clientHost(remote); got != want {
			t.Errorf("clientHost(%q) = %q, want %q", remote, got, want)
		}
	}
}
