package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopbridge/shopbridge/api"
)

// queue is the outbox or the parked receipts, as the commands show them.
type queue struct {
	cmd      string // "outbox", "parked"
	path     string // the paged admin endpoint
	what     string // "waiting in the outbox"
	about    string // for shopbridge CMD --help
	listHelp string
}

var outboxQueue = queue{cmd: "outbox", path: "/admin/api/outbox", what: "waiting in the outbox",
	about: `The receipts the daemon has accepted and not yet delivered to the upstream
(the outbox), oldest first, and the receipts the upstream refused (parked,
see shopbridge parked).

Actions:
  list            the waiting receipts, a page at a time
  retry EVENT_ID  put a parked receipt back into the outbox

shopbridge outbox list --help and shopbridge outbox retry --help tell their flags.`,
	listHelp: `Lists the receipts waiting in the running daemon's outbox, oldest first
(the order they go to the upstream), with when each arrived, how many
attempts it took and the last attempt's error. A page holds --limit
receipts; the last line names the command for the next page (--after SEQ),
or --all fetches every page. SHOPBRIDGE_ADMIN_TOKEN, when set, is sent as
a Bearer token.`}

var parkedQueue = queue{cmd: "parked", path: "/admin/api/parked", what: "the upstream refused (parked)",
	about: `The receipts the upstream refused with an answer other than "try again"
(parked): they wait for the operator, oldest first, with the upstream's
answer. Fix the cause upstream (or in the register) and retry them.

Actions:
  list            the parked receipts with the upstream's answers, a page at a time
  retry EVENT_ID  put a parked receipt back into the outbox (as shopbridge outbox retry)

shopbridge parked list --help and shopbridge parked retry --help tell their flags.`,
	listHelp: `Lists the receipts the upstream refused (parked), oldest first, with the
upstream's answer. A page holds --limit receipts; the last line names the
command for the next page (--after SEQ), or --all fetches every page.
Retry one with shopbridge parked retry EVENT_ID. SHOPBRIDGE_ADMIN_TOKEN,
when set, is sent as a Bearer token.`}

func cmdQueue(q queue) func([]string) int {
	return func(args []string) int {
		if len(args) == 0 {
			return usageFail(q.cmd, "want an action: list or retry EVENT_ID")
		}
		switch args[0] {
		case "-h", "-help", "--help", "help":
			c := newFlags(q.cmd, "list|retry ...", q.about)
			c.help(os.Stdout)
			return 0
		case "list":
			return q.list(args[1:])
		case "retry":
			return cmdRetry(q.cmd, args[1:])
		default:
			if strings.HasPrefix(args[0], "-") {
				return usageFail(q.cmd, fmt.Sprintf("want an action before the flags (list or retry), got %s", args[0]))
			}
			return usageFail(q.cmd, fmt.Sprintf("unknown action %q, want list or retry", args[0]))
		}
	}
}

func (q queue) list(args []string) int {
	c := newFlags(q.cmd+" list", "", q.listHelp)
	d := c.daemonFlags()
	limit := c.Int("limit", 50, fmt.Sprintf("receipts per page, 1 to %d", api.MaxQueuePage))
	after := c.Uint64("after", 0, "start after the receipt with this `SEQ` (the next-page line names it)")
	all := c.Bool("all", false, "fetch every page")
	asJSON := c.Bool("json", false, "print the page as JSON, as the daemon's "+q.path+" gives it")
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) > 0 {
		return c.fail("unexpected argument %q", c.positional()[0])
	}
	if *limit < 1 || *limit > api.MaxQueuePage {
		return c.fail("--limit: want 1 to %d, got %d", api.MaxQueuePage, *limit)
	}
	base := d.url()
	page, err := fetchQueuePage(base, q.path, *after, *limit)
	for err == nil && *all && page.NextAfter != 0 {
		var next *api.QueuePage
		if next, err = fetchQueuePage(base, q.path, page.NextAfter, *limit); err == nil {
			page.Receipts, page.NextAfter, page.Total = append(page.Receipts, next.Receipts...), next.NextAfter, next.Total
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge %s list: %v\n", q.cmd, err)
		return 1
	}
	if *asJSON {
		b, _ := json.MarshalIndent(page, "", "  ")
		fmt.Printf("%s\n", b)
		return 0
	}
	q.print(os.Stdout, page, *after, *limit, time.Now())
	return 0
}

// print writes a page for people: a head line with the count, a table,
// and the command for the next page.
func (q queue) print(w io.Writer, page *api.QueuePage, after uint64, limit int, now time.Time) {
	if len(page.Receipts) == 0 {
		if after == 0 {
			fmt.Fprintf(w, "%s: no receipts %s\n", q.cmd, q.what)
		} else {
			fmt.Fprintf(w, "%s: %d receipt(s) %s, none after seq %d\n", q.cmd, page.Total, q.what, after)
		}
		return
	}
	fmt.Fprintf(w, "%s: %d receipt(s) %s; %d shown, oldest first\n", q.cmd, page.Total, q.what, len(page.Receipts))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	answer := "LAST ERROR"
	if q.cmd == "parked" {
		answer = "UPSTREAM'S ANSWER"
	}
	fmt.Fprintf(tw, "SEQ\tEVENT ID\tBILL\tTYPE\tRECEIVED\tATTEMPTS\t%s\n", answer)
	for _, r := range page.Receipts {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Seq, r.EventID, orDash(r.BillID), orDash(r.Type),
			when(r.ReceivedAt, now), r.Attempts, orDash(oneLine(r.LastError, 200)))
	}
	tw.Flush()
	if page.NextAfter != 0 {
		fmt.Fprintf(w, "next page: shopbridge %s list --after %d --limit %d\n", q.cmd, page.NextAfter, limit)
	}
}

// fetchQueuePage asks the daemon at base for a page of a queue.
func fetchQueuePage(base, path string, after uint64, limit int) (*api.QueuePage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	resp, err := adminGet(base, path+"?"+q.Encode(), 30*time.Second)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page api.QueuePage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page); err != nil {
		return nil, fmt.Errorf("%s%s: not a page of receipts: %w", base, path, err)
	}
	return &page, nil
}

const outboxRetryAbout = `Puts a receipt the upstream refused (parked) back into the outbox at its old
place; the running daemon sends it again. "shopbridge parked list" lists
parked receipts with the upstream's answer. SHOPBRIDGE_ADMIN_TOKEN, when
set, is sent as a Bearer token.`

func cmdRetry(cmd string, args []string) int {
	c := newFlags(cmd+" retry", "EVENT_ID", outboxRetryAbout)
	d := c.daemonFlags()
	if ok, code := c.parse(args); !ok {
		return code
	}
	ids := c.positional()
	if len(ids) != 1 || ids[0] == "" {
		return c.fail("want exactly one EVENT_ID, as shopbridge parked list shows them")
	}
	base := d.url()
	if err := retryParked(base, ids[0]); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge %s retry: %v\n", cmd, err)
		return 1
	}
	fmt.Printf("receipt %s is queued again; the daemon at %s sends it to the upstream\n", ids[0], base)
	return 0
}

// cmdOutbox is shopbridge outbox (the tests call it directly).
func cmdOutbox(args []string) int { return cmdQueue(outboxQueue)(args) }

// retryParked asks the daemon at base to re-queue a parked receipt.
func retryParked(base, eventID string) error {
	resp, err := adminDo(http.MethodPost, base, "/admin/api/outbox/"+url.PathEscape(eventID)+"/retry", 10*time.Second)
	if err != nil {
		return fmt.Errorf("receipt %s: %w", eventID, err)
	}
	resp.Body.Close()
	return nil
}
