package storage

import (
	"runtime"
	"time"
)

// Background work on one core. With one P (GOMAXPROCS=1: a single-core
// PC, or a service limited to one core), a goroutine that computes for
// long (the backup's copy and checksum, the store's page check) keeps the
// registers' goroutines waiting: Go gives it 10 ms slices, and while it
// runs nobody polls the network, so an answer ready to be read waits for
// the next slice at each of its steps. runtime.Gosched does not help: the
// yielding goroutine is the first the scheduler finds again, before the
// network is polled. A pacer parks the worker (a short sleep) after each
// paceChunk of work, so that the scheduler runs what is ready, polls the
// network and runs what that woke, before the worker goes on. Each answer
// then waits at most one chunk's work at a step (well under a
// millisecond), and the worker, when nothing else is running, loses a
// millisecond per chunk (the poller's resolution): a gigabyte's checksum
// takes about 1.5 s instead of 0.5 s. With more than one P the others
// serve the network, and a pacer does nothing.
type pacer struct {
	done int // bytes of work since the last pause
	one  bool
}

// paceChunk is how much work a pacer lets go between pauses: 1 MiB is
// about 0.5 ms of SHA-256 or of a copy in the page cache.
const paceChunk = 1 << 20

func newPacer() *pacer { return &pacer{one: runtime.GOMAXPROCS(0) == 1} }

// pause pauses now (with one P), between two parts of a piece of work.
func (p *pacer) pause() {
	if p.one {
		p.done = 0
		// Long enough that the timer has not fired when the scheduler
		// looks for work, so that it polls the network first.
		time.Sleep(50 * time.Microsecond)
	}
}

// add counts n bytes of work done, and pauses once a chunk's worth is.
func (p *pacer) add(n int) {
	if !p.one {
		return
	}
	p.done += n
	if p.done >= paceChunk {
		p.pause()
	}
}
