package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
)

// TestPermissionHint: the path once, the user, the fix; other errors as
// they were.
func TestPermissionHint(t *testing.T) {
	db := "/srv/shop/data/shopbridge.db"
	open := fmt.Errorf("open store %s: %w", db, &fs.PathError{Op: "open", Path: db, Err: fs.ErrPermission})
	msg := PermissionHint(open, "/srv/shop/data").Error()
	u := currentUser()
	for _, want := range []string{"permission denied on " + db, "for user " + u.name, "chown -R " + u.name, "/srv/shop/data", "--data"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if n := strings.Count(msg, db); n != 1 {
		t.Errorf("%q names %s %d times, want once", msg, db, n)
	}
	if !errors.Is(PermissionHint(open, "/srv/shop/data"), fs.ErrPermission) {
		t.Error("the hint hides the permission error from errors.Is")
	}
	mk := fmt.Errorf("create data directory: %w", &fs.PathError{Op: "mkdir", Path: "/srv/shop/data", Err: fs.ErrPermission})
	if msg := PermissionHint(mk, "/srv/shop/data").Error(); !strings.Contains(msg, "cannot create the data directory /srv/shop/data") ||
		!strings.Contains(msg, "install -d -o "+u.name) || strings.Count(msg, "/srv/shop/data") != 2 {
		t.Errorf("mkdir hint: %q", msg)
	}
	other := errors.New("store x is locked by another process")
	if PermissionHint(other, "/d") != other {
		t.Error("another error is rewritten")
	}
}

// TestStatusCapped: a real store with many parked receipts and receipts
// waiting gives a status of kilobytes whose lists hold ListLimit items
// and whose counts say the rest; admin/api/parked and admin/api/outbox
// page through every one of them exactly once, oldest first.
func TestStatusCapped(t *testing.T) {
	const parked, waiting = 2000, 130
	d := openDaemon(t)
	var wg gosync.WaitGroup
	errs := make(chan error, parked+waiting)
	work := make(chan int)
	for range 32 { // concurrent commits share an fsync (the store's group commit)
		wg.Go(func() {
			for i := range work {
				r := &shopbridge.Receipt{EventID: fmt.Sprintf("evt-%05d", i), ReceivedAt: time.Now(), Type: "SELL", BillID: fmt.Sprint(100000 + i),
					Body: fmt.Appendf(nil, `{"id":"evt-%05d","data":{"type":"SELL","extras":{"billId":"%d"}}}`, i, 100000+i)}
				if _, err := d.Store.AcceptReceipt(r); err != nil {
					errs <- err
					continue
				}
				if i < parked {
					if err := d.Store.Park(r.EventID, `HTTP 400: {"errors":[{"code":2001,"reason":"bill `+r.BillID+` is not known upstream"}]}`); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	for i := range parked + waiting {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	base := "http://" + d.Addr()
	body := get(t, base+"/admin/api/status")
	var st api.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("status with %d parked and %d waiting: %d bytes", parked, waiting, len(body))
	if st.Parked != parked || st.Outbox != waiting || st.ListLimit != api.StatusListLimit {
		t.Errorf("parked %d outbox %d list_limit %d; want %d, %d, %d", st.Parked, st.Outbox, st.ListLimit, parked, waiting, api.StatusListLimit)
	}
	if len(st.ParkedList) != api.StatusListLimit || len(st.OutboxList) != api.StatusListLimit {
		t.Errorf("lists of %d parked and %d waiting, want %d each", len(st.ParkedList), len(st.OutboxList), api.StatusListLimit)
	}
	// The status's lists are the oldest: the first page of the paged lists.
	var firstParked, firstOutbox api.QueuePage
	json.Unmarshal(get(t, fmt.Sprintf("%s/admin/api/parked?limit=%d", base, api.StatusListLimit)), &firstParked)
	json.Unmarshal(get(t, fmt.Sprintf("%s/admin/api/outbox?limit=%d", base, api.StatusListLimit)), &firstOutbox)
	for i := range min(len(st.ParkedList), len(st.OutboxList), len(firstParked.Receipts), len(firstOutbox.Receipts)) {
		if st.ParkedList[i].EventID != firstParked.Receipts[i].EventID || st.OutboxList[i].EventID != firstOutbox.Receipts[i].EventID {
			t.Fatalf("status list item %d: %s, %s; the oldest are %s, %s", i, st.ParkedList[i].EventID, st.OutboxList[i].EventID,
				firstParked.Receipts[i].EventID, firstOutbox.Receipts[i].EventID)
		}
	}
	if len(body) > 32<<10 {
		t.Errorf("status is %d bytes with capped lists", len(body))
	}
	for _, q := range []struct {
		path   string
		total  int
		isPark func(i int) bool
		limit  int
	}{{"/admin/api/parked", parked, func(i int) bool { return i < parked }, 1000}, {"/admin/api/parked", parked, func(i int) bool { return i < parked }, 333},
		{"/admin/api/outbox", waiting, func(i int) bool { return i >= parked }, 50}} {
		seen, after, pages := 0, uint64(0), 0
		ids := map[string]bool{}
		for {
			var page api.QueuePage
			if err := json.Unmarshal(get(t, fmt.Sprintf("%s%s?limit=%d&after=%d", base, q.path, q.limit, after)), &page); err != nil {
				t.Fatal(err)
			}
			pages++
			if page.Total != q.total {
				t.Fatalf("%s: total %d, want %d", q.path, page.Total, q.total)
			}
			for _, r := range page.Receipts {
				var i int
				if _, err := fmt.Sscanf(r.EventID, "evt-%d", &i); err != nil || !q.isPark(i) || ids[r.EventID] || r.Seq <= after {
					t.Fatalf("%s: receipt %d is %s (seq %d after %d): not in this queue, twice or out of order", q.path, seen, r.EventID, r.Seq, after)
				}
				ids[r.EventID] = true
				after = r.Seq
				seen++
			}
			if page.NextAfter == 0 {
				break
			}
			if page.NextAfter != after || len(page.Receipts) != q.limit {
				t.Fatalf("%s: next_after %d after a page of %d ending at %d", q.path, page.NextAfter, len(page.Receipts), after)
			}
		}
		if seen != q.total || pages != (q.total+q.limit-1)/q.limit {
			t.Errorf("%s limit %d: %d receipts in %d pages, want %d", q.path, q.limit, seen, pages, q.total)
		}
	}
	for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "after=-1", "after=x"} {
		resp, err := http.Get(base + "/admin/api/parked?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"reason"`) {
			t.Errorf("%s: %d %s, want 400 with a reason", bad, resp.StatusCode, b)
		}
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %s", url, resp.StatusCode, err, b)
	}
	return b
}
