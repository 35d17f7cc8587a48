package api_test

import (
	"html"
	"strings"
	"testing"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
)

// TestConsoleHelp: the console links the guide, in the console's language,
// whole and escaped, as the binary carries it.
func TestConsoleHelp(t *testing.T) {
	ts := newServer(t, api.Config{})
	for _, c := range []struct {
		query, guide, heading string
	}{
		{"", shopbridge.GuideRU, "## Установка в магазине"},
		{"?lang=en", shopbridge.GuideEN, "## Install in a shop"},
	} {
		a := ts.get(t, "/admin/help"+c.query)
		body := string(a.body)
		if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("/admin/help%s = %d %s", c.query, a.status, a.header.Get("Content-Type"))
		}
		if !strings.Contains(body, html.EscapeString(c.guide)) || !strings.Contains(body, c.heading) {
			t.Errorf("/admin/help%s does not carry the whole guide with %q", c.query, c.heading)
		}
		if !strings.Contains(body, `href="/admin/help"`) {
			t.Errorf("/admin/help%s: the navigation has no link to the guide", c.query)
		}
	}
	// Every console page links it.
	if a := ts.get(t, "/admin/"); !strings.Contains(string(a.body), `href="/admin/help"`) {
		t.Errorf("the overview does not link the guide")
	}
}
