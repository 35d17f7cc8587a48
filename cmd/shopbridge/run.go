package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // --timezone works on Windows and slim Linux images too

	"github.com/shopbridge/shopbridge/daemon"
	"github.com/shopbridge/shopbridge/daemon/service"
)

func init() {
	register(&command{name: "run", usage: "run the daemon in the foreground", run: runCmd})
}

func runCmd(args []string) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			daemon.RunUsage(os.Stdout)
			return 0
		}
	}
	cfg, err := daemon.ParseRunArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge run: %v\n", err)
		return 2
	}
	logger := newLogger(cfg.LogLevel)
	if cfg.Service {
		// On Windows the service logs to the Event Log; on Linux stderr
		// goes to journald.
		if h := service.LogHandler(logLevel(cfg.LogLevel)); h != nil {
			logger = slog.New(h)
		}
	}
	slog.SetDefault(logger)
	d := daemon.New(cfg, logger)
	if t := os.Getenv("SHOPBRIDGE_FAKE_NOW"); t != "" {
		// For tests that replay a journal recorded on another day.
		fake, err := time.Parse(time.RFC3339, t)
		if err != nil {
			fmt.Fprintf(os.Stderr, "shopbridge run: SHOPBRIDGE_FAKE_NOW: want an RFC 3339 time, got %q\n", t)
			return 2
		}
		start := time.Now()
		d.Now = func() time.Time { return fake.Add(time.Since(start)) }
	}
	if cfg.Service {
		return runService(d)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := d.Open(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge run: %v\n", err)
		return 1
	}
	select {
	case <-ctx.Done():
		logger.Info("stopping", "signal", "received")
	case err := <-d.Done():
		if err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("server failed", "err", err)
			d.Close()
			return 1
		}
	}
	if err := d.Close(); err != nil {
		logger.Error("stopped with errors", "err", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}

func logLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func newLogger(level string) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(level)}))
}
