// Command profile is the shopbridge daemon with net/http/pprof on a second
// loopback listener, for finding where a benchmark's time goes without
// adding a profiling switch to the real binary. After its own flags and
// "--" it takes the flags of `shopbridge run` a profile needs, with run's
// defaults (runConfig below; run's parser is cmd/shopbridge's, so the
// environment and the config file are not read, and HTTPS is off unless
// --https-listen says):
//
//	profile -pprof 127.0.0.1:6060 -- --listen 127.0.0.1:8480 --data DIR --mdns=false --demo
//	go tool pprof -top 'http://127.0.0.1:6060/debug/pprof/profile?seconds=10'
//
// With -journal none|discard|batch it skips the daemon's wiring and serves
// the api handlers over the store directly (demo bills seeded), to tell the
// journal's cost from the handlers': none records nothing, discard builds
// each entry and drops it, batch writes entries with AppendJournal in
// batches as the daemon's journal writer does.
package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"time"

	"flag"
	"fmt"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/storage"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/shopbridge/shopbridge/daemon"
)

func main() {
	pprofAddr := flag.String("pprof", "127.0.0.1:6060", "pprof listener (loopback)")
	mutex := flag.Int("mutex", 0, "runtime.SetMutexProfileFraction")
	block := flag.Int("block", 0, "runtime.SetBlockProfileRate (ns)")
	journal := flag.String("journal", "", "serve api directly: none, discard or batch (default: the whole daemon)")
	flag.Parse()
	runtime.SetMutexProfileFraction(*mutex)
	runtime.SetBlockProfileRate(*block)
	cfg, err := runConfig(flag.Args())
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if *journal != "" {
		go http.ListenAndServe(*pprofAddr, nil)
		if err := direct(cfg, *journal, logger); err != nil {
			fmt.Fprintf(os.Stderr, "profile: %v\n", err)
			os.Exit(1)
		}
		return
	}
	go func() {
		if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
			logger.Error("pprof", "err", err)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := daemon.New(cfg, logger)
	if err := d.Open(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "profile: %v\n", err)
		os.Exit(1)
	}
	<-ctx.Done()
	d.Close()
}

// runConfig reads the run flags a profile needs into a daemon.Config.
func runConfig(args []string) (daemon.Config, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	c := daemon.Config{Timezone: time.Local}
	fs.StringVar(&c.Listen, "listen", ":8480", "address to serve terminals and operators on")
	fs.StringVar(&c.HTTPSListen, "https-listen", "", "address of the HTTPS listener (default: none)")
	fs.StringVar(&c.DataDir, "data", "", "directory of the store, DIR/shopbridge.db (required)")
	fs.StringVar(&c.Upstream, "upstream", "", "base URL of the cloud CRM API (default: none, standalone)")
	fs.StringVar(&c.UpstreamToken, "upstream-token", "", "Bearer token for the upstream")
	fs.DurationVar(&c.SyncInterval, "sync-interval", 10*time.Second, "how often to pull from the upstream")
	fs.IntVar(&c.PushInFlight, "push-in-flight", 64, "the cap of the adaptive push window")
	fs.BoolVar(&c.MDNS, "mdns", true, "announce over mDNS/DNS-SD")
	fs.StringVar(&c.Name, "name", "shopbridge profile", "instance name announced over mDNS")
	fs.StringVar(&c.TerminalToken, "terminal-token", "", "Bearer token terminals must send")
	fs.StringVar(&c.AdminToken, "admin-token", "", "Bearer token for /admin and /metrics from other hosts")
	fs.DurationVar(&c.JournalMaxAge, "journal-max-age", 720*time.Hour, "journal entries older than this go")
	fs.Int64Var(&c.JournalMaxSize, "journal-max-size", 256<<20, "oldest journal entries go beyond this many bytes")
	demo := fs.Bool("demo", false, "seed an empty store with sample bills")
	fs.StringVar(&c.BackupDir, "backup-dir", "", "folder of the scheduled backups (default: none, off)")
	fs.DurationVar(&c.BackupEvery, "backup-every", 24*time.Hour, "how often to back the store up into backup-dir")
	fs.IntVar(&c.BackupKeep, "backup-keep", 7, "how many scheduled backups to keep")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.DataDir == "" {
		return c, errors.New("--data is required")
	}
	if *demo {
		c.Demo = demoData()
	}
	return c, c.Validate()
}

// demoData is the simulator's default bills, as run --demo seeds them.
func demoData() *daemon.DemoData {
	d := crmsim.DefaultData()
	return &daemon.DemoData{System: d.System, Bills: d.Bills}
}

// direct serves the api handlers over the store with the chosen journal.
func direct(cfg daemon.Config, mode string, logger *slog.Logger) error {
	st, err := storage.Open(filepath.Join(cfg.DataDir, storage.FileName), storage.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := daemon.SeedDemo(st, demoData()); err != nil {
		return err
	}
	var j shopbridge.Journal
	switch mode {
	case "none":
	case "discard":
		j = discard{}
	case "batch":
		b := &batcher{st: st, ch: make(chan shopbridge.JournalEntry, 16384)}
		go b.loop()
		j = b
	default:
		return fmt.Errorf("-journal: want none, discard or batch, not %q", mode)
	}
	srv := api.New(api.Config{Store: st, Journal: j, Logger: logger, Status: func() api.Status {
		s, _ := st.Stats()
		return api.Status{Store: s}
	}})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	logger.Info("listening", "addr", ln.Addr(), "journal", mode)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	go hs.Serve(ln)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return hs.Close()
}

type discard struct{}

func (discard) Record(shopbridge.JournalEntry) {}

// batcher writes entries like the daemon's journal writer: a queue that
// drops when full and batches of up to 2048 per AppendJournal.
type batcher struct {
	st *storage.Store
	ch chan shopbridge.JournalEntry
}

func (b *batcher) Record(e shopbridge.JournalEntry) {
	select {
	case b.ch <- e:
	default:
	}
}

func (b *batcher) loop() {
	batch := make([]shopbridge.JournalEntry, 0, 2048)
	for e := range b.ch {
		batch = append(batch[:0], e)
	drain:
		for len(batch) < cap(batch) {
			select {
			case e := <-b.ch:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		b.st.AppendJournal(batch)
	}
}
