package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

func (s *Server) syncedAt(w http.ResponseWriter) {
	if t := s.cfg.Store.SyncedAt(); !t.IsZero() {
		w.Header().Set("X-Shopbridge-Synced-At", t.UTC().Format(time.RFC3339))
	}
}

func (s *Server) hello(w http.ResponseWriter, r *http.Request, _ httprouter.Params, _ *exchange) error {
	body, _ := json.Marshal(struct {
		System   string `json:"system"`
		Protocol string `json:"protocol"`
	}{s.cfg.Store.System(), shopbridge.ProtocolVersion})
	writeJSON(w, http.StatusOK, body)
	return nil
}

// ListParams are the parameters of /api/v2/list that shopbridge reads.
type ListParams struct {
	Date   string // "", "today" or YYYY-MM-DD
	Number string
}

// ParseListParams reads list parameters from a raw query, ignoring unknown
// ones. date must be "today" or a real calendar day.
func ParseListParams(rawQuery string) (ListParams, error) {
	var p ListParams
	for _, pair := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil || (key != "date" && key != "number") {
			continue // unknown parameters, readable or not, are ignored
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return ListParams{}, shopbridge.Errorf(shopbridge.EINVALID, key, "bad escape in %s: %v", key, err)
		}
		if key == "date" && p.Date == "" {
			p.Date = val
		} else if key == "number" && p.Number == "" {
			p.Number = val
		}
	}
	if p.Date != "" && p.Date != "today" {
		if _, err := time.Parse("2006-01-02", p.Date); err != nil || len(p.Date) != 10 {
			return ListParams{}, shopbridge.Errorf(shopbridge.EVALUE, "date", "date must be \"today\" or YYYY-MM-DD, not %q", logText(p.Date))
		}
	}
	if len(p.Number) > shopbridge.MaxID {
		return ListParams{}, tooLong("number", len(p.Number))
	}
	return p, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, _ httprouter.Params, x *exchange) error {
	p, err := ParseListParams(r.URL.RawQuery)
	if err != nil {
		return err
	}
	q := storage.ListQuery{Number: p.Number, Date: p.Date}
	if p.Date == "today" {
		q.Date = s.cfg.Now().In(s.cfg.Timezone).Format("2006-01-02")
	}
	sums, err := s.cfg.Store.List(q)
	if err != nil {
		return err
	}
	if len(sums) == 0 && p.Number != "" && s.cfg.ReadThrough != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ReadThroughTimeout)
		found, rerr := s.cfg.ReadThrough.ListByNumber(ctx, p.Number)
		cancel()
		if rerr == nil {
			x.source = "upstream"
			for _, sum := range found {
				if q.Date == "" || strings.HasPrefix(sum.Date, q.Date+" ") {
					sums = append(sums, sum)
				}
			}
		}
	}
	if q.Date != "" && p.Number != "" {
		kept := sums[:0]
		for _, sum := range sums {
			if strings.HasPrefix(sum.Date, q.Date+" ") {
				kept = append(kept, sum)
			}
		}
		sums = kept
	}
	bp := s.bufs.Get().(*[]byte)
	b := append((*bp)[:0], '[')
	for i, sum := range sums {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, sum.Raw...)
	}
	b = append(b, ']')
	s.syncedAt(w)
	writeJSON(w, http.StatusOK, b)
	*bp = b
	s.bufs.Put(bp)
	return nil
}

func (s *Server) billByID(w http.ResponseWriter, r *http.Request, ps httprouter.Params, x *exchange) error {
	id := ps.ByName("id")
	if !shopbridge.ValidID(id) {
		return shopbridge.Errorf(shopbridge.ENOTFOUND, "id", "no bill with id %q (ids are whole numbers)", logText(id))
	}
	body, err := s.cfg.Store.SharedBillBody(id)
	if shopbridge.ErrorKind(err) == shopbridge.ENOTFOUND && s.cfg.ReadThrough != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ReadThroughTimeout)
		b, rerr := s.cfg.ReadThrough.BillByID(ctx, id)
		cancel()
		if rerr == nil {
			body, err, x.source = b.Body, nil, "upstream"
		}
	}
	if err != nil {
		return err
	}
	s.syncedAt(w)
	if rec, ok := w.(*recorder); ok {
		rec.writeShared(http.StatusOK, body)
		return nil
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
