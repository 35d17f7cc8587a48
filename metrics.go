package shopbridge

import (
	"io"
	"strconv"
)

// MetricsWriter writes Prometheus text-format lines about one part.
type MetricsWriter interface {
	WriteMetrics(w io.Writer)
}

// Metric is the one way api, sync and daemon write the Prometheus text
// format: a family's HELP and TYPE lines, then its samples.
type Metric struct {
	Name, Type, Help string // Type: "counter", "gauge" or "histogram"
}

// Header writes the family's HELP and TYPE lines.
func (m Metric) Header(w io.Writer) {
	b := make([]byte, 0, 128)
	b = append(append(append(append(b, "# HELP "...), m.Name...), ' '), m.Help...)
	b = append(append(append(append(append(b, "\n# TYPE "...), m.Name...), ' '), m.Type...), '\n')
	w.Write(b)
}

// Sample writes one sample of the family (name plus suffix such as
// "_bucket"); labels are name, value pairs, values quoted as Go strings
// (which escapes \, " and newlines as the format wants).
func (m Metric) Sample(w io.Writer, suffix string, v float64, labels ...string) {
	b := append(make([]byte, 0, 128), m.Name...)
	b = append(b, suffix...)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(append(b, labels[i]...), '=')
		b = strconv.AppendQuote(b, labels[i+1])
	}
	if len(labels) > 1 {
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	w.Write(append(b, '\n'))
}

// Write writes a family with a single unlabelled sample.
func (m Metric) Write(w io.Writer, v float64) {
	m.Header(w)
	m.Sample(w, "", v)
}

// WriteLabelled writes a family whose samples differ by one label.
func (m Metric) WriteLabelled(w io.Writer, label string, values []string, vs []float64) {
	m.Header(w)
	for i, lv := range values {
		m.Sample(w, "", vs[i], label, lv)
	}
}
