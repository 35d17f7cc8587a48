package crmsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// State is what GET /state of the control listener answers.
type State struct {
	API         string           `json:"api"`     // bound API address
	Control     string           `json:"control"` // bound control address
	System      string           `json:"system"`
	Fault       Fault            `json:"fault"`
	FaultActive bool             `json:"fault_active"` // the fault is in its on phase
	Latency     string           `json:"latency"`      // base latency, a Go duration
	ClockOffset string           `json:"clock_offset"` // added to the Date of answers, a Go duration
	Bills       int              `json:"bills"`
	Settled     int              `json:"settled"` // bills settled by receipts (Config.Settle)
	Receipts    int              `json:"receipts"`
	Counters    map[string]int64 `json:"counters"`

	MaxConcurrent int   `json:"max_concurrent"` // 0: no limit
	PeakCalls     int   `json:"peak_calls"`     // most calls open at once, refused ones included
	Refused       int64 `json:"refused"`        // calls answered 429 for max_concurrent
}

// State returns the simulator's current settings and counts.
func (s *Server) State() State {
	s.mu.Lock()
	st := State{
		API: s.apiAddr, Control: s.ctlAddr, System: s.system, Fault: s.fault, FaultActive: s.faultOn,
		Latency: s.latency.String(), ClockOffset: s.clock.String(), Bills: len(s.bills), Settled: len(s.settled), Receipts: len(s.receipts),
		MaxConcurrent: s.maxConc, PeakCalls: s.peak, Refused: s.refused,
	}
	s.mu.Unlock()
	st.Counters = s.Counters()
	return st
}

// maxControlBody bounds control request bodies (a whole data file fits).
const maxControlBody = 256 << 20

// controlHandler serves the control API; see the package comment.
func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("PUT /fault", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if !readJSON(w, r, &f) {
			return
		}
		if err := s.SetFault(f); err != nil {
			ctlError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("DELETE /fault", func(w http.ResponseWriter, r *http.Request) {
		if err := s.SetFault(Fault{Mode: FaultNone}); err != nil {
			ctlError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("PUT /latency", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Latency string `json:"latency"`
		}
		if !readJSON(w, r, &v) {
			return
		}
		d, err := time.ParseDuration(v.Latency)
		if err == nil {
			err = s.SetLatency(d)
		}
		if err != nil {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("latency: %w", err))
			return
		}
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("PUT /clock", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Offset *string `json:"offset"`
		}
		if !readJSON(w, r, &v) {
			return
		}
		if v.Offset == nil {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("offset: missing"))
			return
		}
		d, err := time.ParseDuration(*v.Offset)
		if err != nil {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("offset: %w", err))
			return
		}
		s.SetClockOffset(d)
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("PUT /max-concurrent", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			MaxConcurrent *int `json:"max_concurrent"`
		}
		if !readJSON(w, r, &v) {
			return
		}
		if v.MaxConcurrent == nil {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("max_concurrent: missing"))
			return
		}
		if err := s.SetMaxConcurrent(*v.MaxConcurrent); err != nil {
			ctlError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("PUT /system", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			System *string `json:"system"`
		}
		if !readJSON(w, r, &v) {
			return
		}
		if v.System == nil {
			ctlError(w, http.StatusBadRequest, fmt.Errorf("system: missing"))
			return
		}
		s.SetSystem(*v.System)
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("PUT /data", func(w http.ResponseWriter, r *http.Request) {
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		d, err := ParseData(b)
		if err == nil {
			err = s.SetData(d)
		}
		if err != nil {
			ctlError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.State())
	})
	mux.HandleFunc("POST /bills", func(w http.ResponseWriter, r *http.Request) {
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		if err := s.PutBill(b); err != nil {
			ctlError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /bills/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		if err := s.PutBillAs(r.PathValue("id"), b); err != nil {
			ctlError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /bills/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.DeleteBill(r.PathValue("id")) {
			ctlError(w, http.StatusNotFound, fmt.Errorf("bill %q: not found", r.PathValue("id")))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /list", func(w http.ResponseWriter, r *http.Request) {
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		if err := s.PutListEntry(b); err != nil {
			ctlError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /list/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.DeleteListEntry(r.PathValue("id")) {
			ctlError(w, http.StatusNotFound, fmt.Errorf("list entry %q: not found", r.PathValue("id")))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /receipts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Receipts())
	})
	mux.HandleFunc("DELETE /receipts", func(w http.ResponseWriter, r *http.Request) {
		s.ResetReceipts()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Calls())
	})
	mux.HandleFunc("DELETE /counters", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		ctlError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func ctlError(w http.ResponseWriter, status int, err error) {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		ctlError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return nil, false
	}
	return b, true
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		ctlError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return false
	}
	return true
}

// Control is a client of a simulator's control listener, for tests and
// tools that run the simulator in another process.
type Control struct {
	URL    string       // base URL of the control listener, e.g. "http://127.0.0.1:8482"
	Client *http.Client // nil means a client with a 10 s timeout
}

func (c *Control) do(method, path string, body []byte, out any) error {
	hc := c.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequest(method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("crmsim control %s %s: %w", method, path, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("crmsim control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("crmsim control %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("crmsim control %s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("crmsim control %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("crmsim control %s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// State returns the simulator's settings and counts.
func (c *Control) State() (State, error) {
	var st State
	err := c.do(http.MethodGet, "/state", nil, &st)
	return st, err
}

// SetFault sets the fault (see Server.SetFault).
func (c *Control) SetFault(f Fault) error {
	return c.do(http.MethodPut, "/fault", mustJSON(f), nil)
}

// ClearFault clears the fault.
func (c *Control) ClearFault() error { return c.do(http.MethodDelete, "/fault", nil, nil) }

// SetLatency sets the base latency of every /api/v2 call.
func (c *Control) SetLatency(d time.Duration) error {
	return c.do(http.MethodPut, "/latency", mustJSON(map[string]string{"latency": d.String()}), nil)
}

// SetClockOffset sets the simulator's clock offset (see
// Server.SetClockOffset).
func (c *Control) SetClockOffset(d time.Duration) error {
	return c.do(http.MethodPut, "/clock", mustJSON(map[string]string{"offset": d.String()}), nil)
}

// SetMaxConcurrent sets how many calls are served at once; 0 means no limit.
func (c *Control) SetMaxConcurrent(n int) error {
	return c.do(http.MethodPut, "/max-concurrent", mustJSON(map[string]int{"max_concurrent": n}), nil)
}

// SetSystem sets the system string of hello.
func (c *Control) SetSystem(system string) error {
	return c.do(http.MethodPut, "/system", mustJSON(map[string]string{"system": system}), nil)
}

// SetData replaces everything served with a data file's contents.
func (c *Control) SetData(dataFile []byte) error { return c.do(http.MethodPut, "/data", dataFile, nil) }

// PutBill adds or replaces a bill keyed by its own id (see Server.PutBill).
func (c *Control) PutBill(raw []byte) error { return c.do(http.MethodPost, "/bills", raw, nil) }

// PutBillAs stores any bytes as the answer of bill/byid/id (see Server.PutBillAs).
func (c *Control) PutBillAs(id string, raw []byte) error {
	return c.do(http.MethodPut, "/bills/"+url.PathEscape(id), raw, nil)
}

// DeleteBill drops a bill and its list summary; unknown ids are an error.
func (c *Control) DeleteBill(id string) error {
	return c.do(http.MethodDelete, "/bills/"+url.PathEscape(id), nil, nil)
}

// PutListEntry gives a bill its own list entry bytes, keyed by the entry's
// id (see Server.PutListEntry).
func (c *Control) PutListEntry(raw []byte) error { return c.do(http.MethodPost, "/list", raw, nil) }

// DeleteListEntry drops a list entry; the bill is listed with its derived
// summary again. Unknown ids are an error.
func (c *Control) DeleteListEntry(id string) error {
	return c.do(http.MethodDelete, "/list/"+url.PathEscape(id), nil, nil)
}

// Receipts returns every recorded receipt arrival, oldest first.
func (c *Control) Receipts() ([]Receipt, error) {
	var rs []Receipt
	err := c.do(http.MethodGet, "/receipts", nil, &rs)
	return rs, err
}

// ResetReceipts forgets the recorded receipts.
func (c *Control) ResetReceipts() error { return c.do(http.MethodDelete, "/receipts", nil, nil) }

// Counters returns the calls that arrived, by kind.
func (c *Control) Counters() (map[string]int64, error) {
	m := map[string]int64{}
	err := c.do(http.MethodGet, "/counters", nil, &m)
	return m, err
}

// Calls returns the calls that arrived, oldest first.
func (c *Control) Calls() ([]Call, error) {
	var cs []Call
	err := c.do(http.MethodGet, "/calls", nil, &cs)
	return cs, err
}

// ResetCounters sets the counters to zero.
func (c *Control) ResetCounters() error { return c.do(http.MethodDelete, "/counters", nil, nil) }
