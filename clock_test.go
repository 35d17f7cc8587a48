package shopbridge_test

import (
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
)

func TestDescribeSkew(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		skew time.Duration
		want string
	}{
		{0, "in step with the upstream"},
		{365 * day, "365 days behind the upstream"},
		{-365 * day, "365 days ahead of the upstream"},
		// Measured a second short of a year (seen in the vmtest guest).
		{-(365*day - time.Second), "365 days ahead of the upstream"},
		{365*day + 11*time.Hour, "365 days behind the upstream"},
		{365*day + 13*time.Hour, "366 days behind the upstream"},
		{2 * day, "2 days behind the upstream"},
		{-3 * time.Hour, "3 h ahead of the upstream"},
		{47 * time.Hour, "47 h behind the upstream"},
		{-10 * time.Minute, "10 min ahead of the upstream"},
		{150 * time.Second, "3 min behind the upstream"},
		{40 * time.Second, "40 s behind the upstream"},
		{-3 * time.Second, "3 s ahead of the upstream"},
	} {
		if got := shopbridge.DescribeSkew(tc.skew); got != tc.want {
			t.Errorf("DescribeSkew(%v) = %q, want %q", tc.skew, got, tc.want)
		}
	}
}
