package shopbridge

import (
	"fmt"
	"time"
)

// ClockSkewMax is how far this PC's clock may be from the upstream's before
// the operator is told. Wide enough for a PC without time synchronisation,
// whose clock drifts by seconds a day, and for the Date header's 1 s
// resolution; narrow enough that a clock set wrong by hand (minutes), a
// wrong time zone taken for local time (hours) or a dead CMOS battery
// (years) shows at once: date=today lists and every time the owner reads
// depend on the clock.
const ClockSkewMax = 2 * time.Minute

// ClockStatus is this PC's clock against the upstream's, measured from the
// Date header of the upstream's answers; "clock" in admin/api/status.
type ClockStatus struct {
	// SkewSeconds is the upstream's time minus this PC's, as NTP's offset:
	// positive when this PC is behind, negative when it is ahead; 0 within
	// the Date header's resolution.
	SkewSeconds float64 `json:"skew_seconds"`
	// MeasuredAt is this PC's clock at the last answer measured: a stale
	// measurement is older than the upstream's last answer.
	MeasuredAt time.Time `json:"measured_at"`
	// OK is false while the skew is beyond MaxSeconds.
	OK         bool    `json:"ok"`
	MaxSeconds float64 `json:"max_seconds"` // ClockSkewMax
}

// Skew is SkewSeconds as a duration.
func (c ClockStatus) Skew() time.Duration {
	return time.Duration(c.SkewSeconds * float64(time.Second))
}

// DescribeSkew says in words where this PC's clock is against the
// upstream's, skew being the upstream's time minus this PC's: "365 days
// behind the upstream", "3 min ahead of the upstream", "in step with the
// upstream".
func DescribeSkew(skew time.Duration) string {
	if skew == 0 {
		return "in step with the upstream"
	}
	way := "behind"
	if skew < 0 {
		way = "ahead of"
	}
	return fmt.Sprintf("%s %s the upstream", SkewAmount(skew), way)
}

// SkewAmount is |skew| rounded to the largest unit of which it holds at
// least two: "365 days", "5 h", "12 min", "45 s". Rounded, not cut: a
// year measured as a second short is still 365 days.
func SkewAmount(skew time.Duration) string {
	d := skew.Abs()
	const day = 24 * time.Hour
	in := func(unit time.Duration) time.Duration { return (d + unit/2) / unit }
	switch {
	case d >= 2*day:
		return fmt.Sprintf("%d days", in(day))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d h", in(time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d min", in(time.Minute))
	default:
		return fmt.Sprintf("%d s", in(time.Second))
	}
}
