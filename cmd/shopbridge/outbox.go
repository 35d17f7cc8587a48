package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

func init() {
	register(&command{
		name:  "outbox",
		usage: "operate on the receipt outbox: retry EVENT_ID re-queues a parked receipt [--addr URL]",
		run:   cmdOutbox,
	})
}

const outboxUsage = `usage: shopbridge outbox retry EVENT_ID [--addr URL]

Puts a receipt the upstream refused (parked) back into the outbox at its old
place; the running daemon sends it again. "shopbridge status" lists parked
receipts with the upstream's answer.

flags:
  --addr URL   the daemon (default: from the config, http://127.0.0.1:8480);
               SHOPBRIDGE_ADMIN_TOKEN, when set, is sent as a Bearer token
`

func cmdOutbox(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, outboxUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "retry":
		return cmdOutboxRetry(args[1:])
	default:
		fmt.Fprintf(os.Stderr, "shopbridge outbox: unknown action %q (want retry)\n", args[0])
		return 2
	}
}

func cmdOutboxRetry(args []string) int {
	fs := flag.NewFlagSet("outbox retry", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := addrFlag(fs)
	// Flags may come before or after the event id.
	var ids []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(os.Stderr, outboxUsage)
				return 0
			}
			fmt.Fprintf(os.Stderr, "shopbridge outbox retry: %v\n", err)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		ids = append(ids, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(ids) != 1 || ids[0] == "" {
		fmt.Fprintln(os.Stderr, "shopbridge outbox retry: want exactly one EVENT_ID (see shopbridge status)")
		return 2
	}
	base := daemonURL(*addr)
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
