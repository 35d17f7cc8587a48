package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

func init() {
	register(&command{
		name:  "outbox",
		usage: "operate on the receipt outbox: retry EVENT_ID re-queues a parked receipt",
		run:   cmdOutbox,
	})
}

const outboxRetryAbout = `Puts a receipt the upstream refused (parked) back into the outbox at its old
place; the running daemon sends it again. "shopbridge status" lists parked
receipts with the upstream's answer. SHOPBRIDGE_ADMIN_TOKEN, when set, is
sent as a Bearer token.`

func newOutboxRetryFlags() (*cmdFlags, daemonFlags) {
	c := newFlags("outbox retry", "EVENT_ID", outboxRetryAbout)
	return c, c.daemonFlags()
}

func cmdOutbox(args []string) int {
	if len(args) == 0 {
		return usageFail("outbox", "want an action: retry EVENT_ID")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		c, _ := newOutboxRetryFlags()
		c.help(os.Stdout)
		return 0
	case "retry":
		return cmdOutboxRetry(args[1:])
	default:
		return usageFail("outbox", fmt.Sprintf("unknown action %q, want retry", args[0]))
	}
}

func cmdOutboxRetry(args []string) int {
	c, d := newOutboxRetryFlags()
	if ok, code := c.parse(args); !ok {
		return code
	}
	ids := c.positional()
	if len(ids) != 1 || ids[0] == "" {
		return c.fail("want exactly one EVENT_ID, as shopbridge status lists them")
	}
	base := d.url()
	if err := retryParked(base, ids[0]); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge outbox retry: %v\n", err)
		return 1
	}
	fmt.Printf("receipt %s is queued again; the daemon at %s sends it to the upstream\n", ids[0], base)
	return 0
}

// retryParked asks the daemon at base to re-queue a parked receipt.
func retryParked(base, eventID string) error {
	resp, err := adminDo(http.MethodPost, base, "/admin/api/outbox/"+url.PathEscape(eventID)+"/retry", 10*time.Second)
	if err != nil {
		return fmt.Errorf("receipt %s: %w", eventID, err)
	}
	resp.Body.Close()
	return nil
}
