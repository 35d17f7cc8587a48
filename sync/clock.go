package sync

import (
	"log/slog"
	"net/http"
	"slices"
	gosync "sync"
	"time"

	"github.com/shopbridge/shopbridge"
)

// The PC's clock against the upstream's: every upstream answer's Date header
// is a sample (docs/clock.md). Shop PCs boot years in the past on a dead
// CMOS battery and nothing corrects them while the internet is down; the
// operator is told, because date=today lists and every time shown depend
// on the clock. Nothing is corrected: the skew is only shown.
const (
	// clockNoise: the Date header has a resolution of 1 s and the moment
	// the upstream wrote it is estimated as the middle of the round trip;
	// a skew below this is measurement noise, shown as 0.
	clockNoise = 2 * time.Second
	// clockHysteresis: a skew beyond ClockSkewMax must come back this far
	// inside it to count as right again, so a clock drifting across the
	// threshold logs once, not at every other sample.
	clockHysteresis = 30 * time.Second
	// clockSamples: the skew is the median of the last few samples, so one
	// answer with an odd Date (held in a proxy, a cache's copy) changes
	// nothing, while a clock that jumps shows within a poll.
	clockSamples = 5
)

// clockMeter keeps the last samples of the skew and logs when the PC's
// clock goes wrong and when it is right again. A nil meter measures
// nothing.
type clockMeter struct {
	log *slog.Logger

	mu      gosync.Mutex
	samples []time.Duration // a ring of at most clockSamples
	next    int             // where the next sample goes
	at      time.Time       // when the last sample was taken
	skew    time.Duration   // the median, rounded, noise as 0
	bad     bool            // beyond ClockSkewMax (with hysteresis)
	wrong   time.Duration   // the skew logged when the clock went wrong
}

func newClockMeter(log *slog.Logger) *clockMeter { return &clockMeter{log: log} }

// observe takes a sample from an answer's Date header. sent is when the
// request went out on its connection, got when the answer's headers came;
// both carry the monotonic clock, so the round trip is right whatever the
// wall clock does meanwhile. A missing or unparsable Date is no sample.
func (m *clockMeter) observe(date string, sent, got time.Time) {
	if m == nil || date == "" {
		return
	}
	up, err := http.ParseTime(date)
	if err != nil {
		return
	}
	// The upstream wrote Date between reading the request and answering,
	// truncated to the second: on average at the middle of the round trip
	// and half a second after the second it names. up carries no monotonic
	// reading, so Sub compares wall clocks, which is the point.
	mid := sent.Add(got.Sub(sent) / 2)
	m.add(up.Add(500*time.Millisecond).Sub(mid), got)
}

// add records one sample taken at at and logs a change of verdict.
func (m *clockMeter) add(sample time.Duration, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < clockSamples {
		m.samples = append(m.samples, sample)
	} else {
		m.samples[m.next] = sample
	}
	m.next = (m.next + 1) % clockSamples
	m.at = at.Round(0) // the wall clock only: it is shown
	sorted := slices.Clone(m.samples)
	slices.Sort(sorted)
	skew := sorted[len(sorted)/2].Round(time.Second)
	if skew.Abs() < clockNoise {
		skew = 0
	}
	m.skew = skew
	switch {
	case !m.bad && skew.Abs() > shopbridge.ClockSkewMax:
		m.bad, m.wrong = true, skew
		m.log.Warn("this PC's clock is wrong: "+shopbridge.DescribeSkew(skew),
			"skew_seconds", int64(skew.Seconds()), "max_seconds", int64(shopbridge.ClockSkewMax.Seconds()),
			"pc_time", m.at.Format(time.RFC3339), "upstream_time", m.at.Add(skew).Format(time.RFC3339),
			"why", "date=today lists and every time shown depend on it: set the PC's clock or enable time synchronisation")
	case m.bad && skew.Abs() <= shopbridge.ClockSkewMax-clockHysteresis:
		m.bad = false
		m.log.Info("this PC's clock is right again: "+shopbridge.DescribeSkew(skew),
			"skew_seconds", int64(skew.Seconds()), "was", shopbridge.DescribeSkew(m.wrong))
	}
}

// status is the last measurement; nil before the first.
func (m *clockMeter) status() *shopbridge.ClockStatus {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) == 0 {
		return nil
	}
	return &shopbridge.ClockStatus{SkewSeconds: m.skew.Seconds(), MeasuredAt: m.at, OK: !m.bad,
		MaxSeconds: shopbridge.ClockSkewMax.Seconds()}
}
