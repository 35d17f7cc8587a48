package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
)

const crmsimAbout = `Runs a simulator of the cloud CRM integration API in the foreground until
SIGINT/SIGTERM, for tests, benchmarks and demos. At start it prints one line:

  crmsim api=http://HOST:PORT control=http://HOST:PORT bills=N

Faults are set through the control listener (see docs/simulator.md).`

func cmdCRMSim(args []string) int {
	c := newFlags("crmsim", "", crmsimAbout)
	listen := c.String("listen", "127.0.0.1:8481", "`ADDR` of the API; :0 picks a port")
	control := c.String("control", "127.0.0.1:8482", "`ADDR` of the control listener, \"\" for none")
	dataFile := c.String("data", "", "serve the data `FILE` {\"system\": S, \"bills\": [...], \"list\": [...]} (default: the bills of the seed journal)")
	bills := c.Int("bills", 0, "serve `N` generated bills instead (e.g. 1000 for benchmarks)")
	latency := c.Duration("latency", 0, "base latency of every call, e.g. 50ms")
	maxConc := c.Int("max-concurrent", 0, "serve at most `N` calls at once; others get 429 (code 1003, no Retry-After) after the base latency (default: no limit)")
	token := c.String("token", "", "require \"Authorization: Bearer `T`\" on /api/v2 calls")
	timezone := c.String("timezone", "", "time zone `NAME` of list?date=today (default: the OS zone)")
	settle := c.Bool("settle", false, "a delivered SELL receipt (FullSettlement or no method) drops its bill from the lists, a PAYBACK lists it again")
	if ok, code := c.parse(args); !ok {
		return code
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "shopbridge crmsim: "+format+"\n", a...)
		return 2
	}
	if len(c.positional()) > 0 {
		return c.fail("unexpected argument %q", c.positional()[0])
	}
	if *latency < 0 {
		return bad("invalid value %q for flag --latency: negative", latency.String())
	}
	if *maxConc < 0 {
		return bad("invalid value %d for flag --max-concurrent: negative", *maxConc)
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
		MaxConcurrent: *maxConc,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, nil)),
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
