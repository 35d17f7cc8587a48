package service

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// program is a Program with a failure channel, recording its calls.
type program struct {
	mu      sync.Mutex
	opened  bool
	closed  int
	openErr error
	done    chan error
}

func (p *program) Open(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.openErr != nil {
		return p.openErr
	}
	p.opened = true
	return nil
}

func (p *program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed++
	return nil
}

func (p *program) Done() <-chan error { return p.done }

func TestAdapterLifecycle(t *testing.T) {
	p := &program{done: make(chan error, 1)}
	a := &adapter{p: p, exit: func(int) { t.Error("exit called on a clean stop") }}
	if err := a.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(nil); err != nil {
		t.Fatal(err)
	}
	p.done <- errors.New("server closed") // what a daemon may report once closed
	if p.closed != 1 || !p.opened {
		t.Fatalf("opened %v, closed %d times", p.opened, p.closed)
	}
	if a.firstErr() != nil {
		t.Fatal(a.firstErr())
	}
}

func TestAdapterOpenError(t *testing.T) {
	want := errors.New("listen tcp :8480: address already in use")
	a := &adapter{p: &program{openErr: want}}
	if err := a.Start(nil); !errors.Is(err, want) {
		t.Fatalf("Start = %v", err)
	}
	if !errors.Is(a.firstErr(), want) {
		t.Fatalf("firstErr = %v", a.firstErr())
	}
}

// TestAdapterFailureExits checks that a daemon failing on its own ends the
// process with status 1, so the service manager restarts it.
func TestAdapterFailureExits(t *testing.T) {
	p := &program{done: make(chan error, 1)}
	code := make(chan int, 1)
	a := &adapter{p: p, exit: func(c int) { code <- c }}
	if err := a.Start(nil); err != nil {
		t.Fatal(err)
	}
	p.done <- errors.New("serve: accept: too many open files")
	select {
	case c := <-code:
		if c != 1 {
			t.Fatalf("exit code %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after the daemon failed")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed != 1 {
		t.Fatalf("closed %d times before exit", p.closed)
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{Running: "running", Stopped: "stopped", NotInstalled: "not installed"} {
		if st.String() != want {
			t.Errorf("%d: %q", st, st.String())
		}
	}
}
