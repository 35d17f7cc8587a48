package shopbridge_test

import (
	"strings"
	"testing"

	"github.com/shopbridge/shopbridge"
)

func TestMetricText(t *testing.T) {
	var b strings.Builder
	m := shopbridge.Metric{Name: "x_total", Type: "counter", Help: "Things."}
	m.Header(&b)
	m.Sample(&b, "", 3, "kind", "LIST", "status", "200")
	m.Sample(&b, "_bucket", 1733212345.25, "le", "+Inf")
	m.Sample(&b, "", 0.5, "q", "a\"b\\c\nd")
	shopbridge.Metric{Name: "up", Type: "gauge", Help: "Up."}.Write(&b, 1)
	want := `# HELP x_total Things.
# TYPE x_total counter
x_total{kind="LIST",status="200"} 3
x_total_bucket{le="+Inf"} 1733212345.25
x_total{q="a\"b\\c\nd"} 0.5
# HELP up Up.
# TYPE up gauge
up 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
