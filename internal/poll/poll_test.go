package poll_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/internal/poll"
)

func TestUntilReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	poll.Until(t, "the third poll", time.Minute, func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("cond ran %d times, want 3", got)
	}
}

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func TestUntilFailsSayingWhat(t *testing.T) {
	f := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("Until did not fail the test (recovered %v)", r)
			}
		}()
		poll.Until(f, "the impossible", time.Millisecond, func() bool { return false })
	}()
	if !strings.Contains(f.msg, "waiting for the impossible") {
		t.Errorf("message %q does not say what it waited for", f.msg)
	}
}
