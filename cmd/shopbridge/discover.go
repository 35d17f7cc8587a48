package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopbridge/shopbridge/discovery"
)

// cmdDiscover is the installer's check that registers can find the daemon:
// it browses exactly as a register does and calls hello on what it finds.
// Exit 0 when at least one instance answered hello, 1 otherwise.
func cmdDiscover(args []string) int {
	c := newFlags("discover", "", `Browses the LAN for shopbridge daemons over mDNS/DNS-SD, exactly as a
register does, and checks each with hello. Exit status 0 when at least one
answered hello, 1 otherwise.`)
	timeout := c.Duration("timeout", 3*time.Second, "how long to listen for answers")
	asJSON := c.Bool("json", false, "print the instances as a JSON array")
	ifaces := c.String("mdns-iface", "", "interfaces `A,B` to browse on (default: the LAN interfaces)")
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) > 0 {
		return c.fail("unexpected argument %q", c.positional()[0])
	}
	if *timeout <= 0 {
		return c.fail("--timeout %v: must be positive", *timeout)
	}
	var names []string
	for _, n := range strings.Split(*ifaces, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	found, err := discovery.Browse(ctx, *timeout, names)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge discover: %v\n", err)
		return 1
	}
	if *asJSON {
		if found == nil {
			found = []discovery.Instance{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(found); err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge discover: %v\n", err)
			return 1
		}
	} else {
		printInstances(os.Stdout, found, *timeout)
	}
	for _, in := range found {
		if in.Err == "" {
			return 0
		}
	}
	return 1
}

func printInstances(w io.Writer, found []discovery.Instance, timeout time.Duration) {
	if len(found) == 0 {
		fmt.Fprintf(w, "no shopbridge daemon answered within %v.\n", timeout)
		fmt.Fprintln(w, "Check that the daemon runs with --mdns=true, that this PC is on the same LAN segment,")
		fmt.Fprintln(w, "and that multicast and UDP 5353 are allowed (see docs/discovery.md).")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESSES\tPORT\tPROTOCOL\tSYSTEM\tHELLO\tTXT")
	for _, in := range found {
		addrs := make([]string, len(in.Addrs))
		for i, ip := range in.Addrs {
			addrs[i] = ip.String()
		}
		keys := make([]string, 0, len(in.TXT))
		for k := range in.TXT {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		txt := make([]string, len(keys))
		for i, k := range keys {
			txt[i] = k + "=" + in.TXT[k]
		}
		status := "ok " + in.URL
		if in.Err != "" {
			status = "FAILED: " + in.Err
		}
		system := in.System
		if system == "" {
			system = "-"
		}
		protocol := in.Protocol
		if protocol == "" {
			protocol = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", in.Name, strings.Join(addrs, ","), in.Port, protocol, system, status, strings.Join(txt, " "))
	}
	tw.Flush()
}
