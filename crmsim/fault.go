package crmsim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Fault modes.
const (
	FaultNone      = "none"
	FaultRefuse    = "refuse"    // all calls: the API listener is closed (connection refused), reopened on the same port when cleared; one kind: its connections are reset without an answer
	FaultHang      = "hang"      // accept, read the request, never answer until the fault is cleared (then answer normally) or the client gives up
	FaultSlow      = "slow"      // answer normally after Fault.Latency more (default 1 s)
	Fault500       = "500"       // 500 with an Evotor error body
	Fault429       = "429"       // 429 with Retry-After (Fault.RetryAfter, default 1 s) and an Evotor error body
	Fault503       = "503"       // 503 with an Evotor error body, and Retry-After only when Fault.RetryAfter is set
	Fault400       = "400"       // 400 with an Evotor error body
	FaultCut       = "cut"       // the full Content-Length is announced, half the body is sent, the connection closed
	FaultMalformed = "malformed" // 200 with invalid JSON (the first half of the normal answer plus garbage)
	FaultHuge      = "huge"      // 200 with a valid JSON answer of HugeSize bytes, streamed chunked

	// FaultMaxConcurrent is not a mode: it marks a receipt refused for
	// Config.MaxConcurrent.
	FaultMaxConcurrent = "max-concurrent"
)

var faultModes = map[string]bool{
	FaultNone: true, FaultRefuse: true, FaultHang: true, FaultSlow: true, Fault500: true, Fault429: true,
	Fault503: true, Fault400: true, FaultCut: true, FaultMalformed: true, FaultHuge: true,
}

var faultKinds = map[string]bool{"": true, KindHello: true, KindList: true, KindBill: true, KindReceipts: true}

// Fault is how the API misbehaves. In JSON durations are strings such as
// "250ms": {"mode": "500", "kind": "receipts", "latency": "2s", "flap": "300ms"}.
type Fault struct {
	Mode    string        // one of the Fault* modes; "" means FaultNone
	Kind    string        // "" for every call, or KindHello, KindList, KindBill, KindReceipts
	Latency time.Duration // extra latency of FaultSlow; 0 means 1 s
	Flap    time.Duration // when > 0 the fault is on for Flap, off for Flap, on again...
	// RetryAfter is the Retry-After of the 429 and 503 modes, in whole
	// seconds; 0 means 1 s for 429 and no header for 503.
	RetryAfter time.Duration
}

type faultJSON struct {
	Mode       string `json:"mode"`
	Kind       string `json:"kind,omitempty"`
	Latency    string `json:"latency,omitempty"`
	Flap       string `json:"flap,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Mode: f.Mode, Kind: f.Kind}
	if j.Mode == "" {
		j.Mode = FaultNone
	}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	if f.Flap != 0 {
		j.Flap = f.Flap.String()
	}
	if f.RetryAfter != 0 {
		j.RetryAfter = f.RetryAfter.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads durations as Go duration strings ("2s", "250ms").
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := Fault{Mode: j.Mode, Kind: j.Kind}
	var err error
	if j.Latency != "" {
		if out.Latency, err = time.ParseDuration(j.Latency); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if j.Flap != "" {
		if out.Flap, err = time.ParseDuration(j.Flap); err != nil {
			return fmt.Errorf("flap: %w", err)
		}
	}
	if j.RetryAfter != "" {
		if out.RetryAfter, err = time.ParseDuration(j.RetryAfter); err != nil {
			return fmt.Errorf("retry_after: %w", err)
		}
	}
	*f = out
	return nil
}

// Validate checks the mode, kind and durations.
func (f Fault) Validate() error {
	if !faultModes[f.Mode] && f.Mode != "" {
		return fmt.Errorf("fault mode %q: want none, refuse, hang, slow, 500, 429, 503, 400, cut, malformed or huge", f.Mode)
	}
	if !faultKinds[f.Kind] {
		return fmt.Errorf("fault kind %q: want empty (all), hello, list, bill or receipts", f.Kind)
	}
	if f.Latency < 0 {
		return fmt.Errorf("fault latency %v is negative", f.Latency)
	}
	if f.Flap < 0 || (f.Flap > 0 && f.Flap < time.Millisecond) {
		return fmt.Errorf("fault flap %v: want 0 or at least 1ms", f.Flap)
	}
	if f.RetryAfter < 0 || f.RetryAfter%time.Second != 0 {
		return fmt.Errorf("fault retry_after %v: want 0 or whole seconds", f.RetryAfter)
	}
	return nil
}

// retryAfter is the Retry-After header value of a 429 or 503, "" for none.
func (f Fault) retryAfter() string {
	switch {
	case f.RetryAfter > 0:
		return strconv.Itoa(int(f.RetryAfter / time.Second))
	case f.Mode == Fault429:
		return "1"
	}
	return ""
}

func (f Fault) slowLatency() time.Duration {
	if f.Latency > 0 {
		return f.Latency
	}
	return time.Second
}

func (f Fault) refusesAll() bool { return f.Mode == FaultRefuse && f.Kind == "" }

// SetFault makes the API misbehave as f until the next SetFault; a Fault
// with mode FaultNone (or "") clears it. With the refuse mode for all calls
// it returns once the listener is closed; clearing it returns once the
// listener listens again (an error if the port was taken meanwhile).
func (s *Server) SetFault(f Fault) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("crmsim: %w", err)
	}
	if f.Mode == "" {
		f.Mode = FaultNone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.stopFlap != nil {
		close(s.stopFlap)
		s.stopFlap = nil
	}
	if err := s.setOn(false); err != nil {
		return err
	}
	s.fault = f
	if f.Mode == FaultNone {
		s.log.Info("fault cleared")
		return nil
	}
	s.log.Info("fault set", "mode", f.Mode, "kind", f.Kind, "latency", f.Latency, "flap", f.Flap, "retry_after", f.RetryAfter)
	if err := s.setOn(true); err != nil {
		return err
	}
	if f.Flap > 0 {
		stop := make(chan struct{})
		s.stopFlap = stop
		s.wg.Add(1)
		go s.flap(f.Flap, stop)
	}
	return nil
}

// Fault returns the fault set and whether it is in its "on" phase now.
func (s *Server) Fault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault, s.faultOn
}

// setOn switches the current fault's on phase, closing or reopening the
// listener for refuse and releasing hanging calls. s.mu is held.
func (s *Server) setOn(on bool) error {
	was := s.faultOn
	s.faultOn = on && s.fault.Mode != FaultNone
	if was == s.faultOn {
		return nil
	}
	if s.fault.refusesAll() {
		if s.faultOn {
			s.stopAPI()
		} else if s.apiSrv == nil && !s.closed {
			if _, err := s.startAPI(); err != nil {
				return err
			}
		}
	}
	if !s.faultOn {
		close(s.release)
		s.release = make(chan struct{})
	}
	return nil
}

// flap toggles the fault every period until stop is closed.
func (s *Server) flap(period time.Duration, stop chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.mu.Lock()
			select {
			case <-stop: // SetFault or Close won the lock first
			default:
				if err := s.setOn(!s.faultOn); err != nil {
					s.log.Error("flap", "err", err)
				}
			}
			s.mu.Unlock()
		}
	}
}

// activeFault returns the fault that applies to a call of kind now, whether
// it is on, and the channel closed when a hang ends.
func (s *Server) activeFault(kind string) (Fault, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	on := s.faultOn && f.Mode != FaultNone && (f.Kind == "" || f.Kind == kind)
	return f, on, s.release
}
