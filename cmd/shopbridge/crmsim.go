package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
)

func init() {
	register(&command{
		name:  "crmsim",
		usage: "runs a simulated upstream CRM API (for tests, benchmarks and demos)",
		run:   runCRMSim,
	})
}

const crmsimUsage = `usage: shopbridge crmsim [flags]

Runs a simulator of the cloud CRM integration API in the foreground until
SIGINT/SIGTERM. At start it prints one line:

  crmsim api=http://HOST:PORT control=http://HOST:PORT bills=N

flags:
  --listen ADDR     API address (default 127.0.0.1:8481; :0 picks a port)
  --control ADDR    control address, "" for none (default 127.0.0.1:8482)
  --data FILE       data file {"system": S, "bills": [...], "list": [...]}
                    (default: the built-in bills from the seed journal)
  --bills N         serve N generated bills instead (e.g. 1000 for benchmarks)
  --latency D       base latency of every call, e.g. 50ms (default 0)
  --token T         require "Authorization: Bearer T" on /api/v2 calls
  --timezone NAME   time zone of list?date=today (default the OS zone)
  --settle          a delivered SELL receipt (FullSettlement or no method)
                    drops its bill from the lists, a PAYBACK lists it again
`

func runCRMSim(args []string) int {
	fs := flag.NewFlagSet("crmsim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", "127.0.0.1:8481", "")
	control := fs.String("control", "127.0.0.1:8482", "")
	dataFile := fs.String("data", "", "")
	bills := fs.Int("bills", 0, "")
	latency := fs.Duration("latency", 0, "")
	token := fs.String("token", "", "")
	timezone := fs.String("timezone", "", "")
	settle := fs.Bool("settle", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stderr, crmsimUsage)
			return 0
		}
		fmt.Fprintf(os.Stderr, "shopbridge crmsim: %v\n", err)
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "shopbridge crmsim: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if *latency < 0 {
		return bad("invalid value %q for flag --latency: negative", latency.String())
	}
	if *bills < 0 {
		return bad("invalid value %d for flag --bills: negative", *bills)
	}
	if *bills > 0 && *dataFile != "" {
		return bad("flags --bills and --data exclude each other")
	}
	loc := time.Local
	if *timezone != "" {
		l, err := time.LoadLocation(*timezone)
		if err != nil {
			return bad("invalid value %q for flag --timezone: %v", *timezone, err)
		}
		loc = l
	}
	cfg := crmsim.Config{
		Listen: *listen, Control: *control, Token: *token, Timezone: loc, Latency: *latency, Settle: *settle,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	switch {
	case *dataFile != "":
		d, err := crmsim.LoadData(*dataFile)
		if err != nil {
			return bad("invalid value for flag --data: %v", err)
		}
		cfg.Data = d
	case *bills > 0:
		cfg.Data = crmsim.Generate(*bills, time.Now().In(loc))
	}
	s, err := crmsim.Open(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge %v\n", err) // err starts with "crmsim: "
		return 1
	}
	ctl := s.ControlURL()
	if ctl == "" {
		ctl = "none"
	}
	fmt.Printf("crmsim api=%s control=%s bills=%d\n", s.URL(), ctl, s.Bills())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	signal.Stop(sig)
	s.Close()
	return 0
}
