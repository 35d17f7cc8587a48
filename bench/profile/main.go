// Command profile is the shopbridge daemon with net/http/pprof on a second
// loopback listener, for finding where a benchmark's time goes without
// adding a profiling switch to the real binary. It takes the flags of
// `shopbridge run` after its own:
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
	"net"
	"path/filepath"
	"time"

	"flag"
	"fmt"
	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/api"
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
	cfg, err := daemon.ParseRunArgs(flag.Args())
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

// direct serves the api handlers over the store with the chosen journal.
func direct(cfg daemon.Config, mode string, logger *slog.Logger) error {
	st, err := storage.Open(filepath.Join(cfg.DataDir, storage.FileName), storage.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := daemon.SeedDemo(st); err != nil {
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
