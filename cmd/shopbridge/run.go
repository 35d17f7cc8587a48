package main

import (
	"context"
	"errors"
	"flag"
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

func cmdRun(args []string) int {
	cfg, err := loadRunConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		runHelp("run", "", runAbout).help(os.Stdout)
		return 0
	}
	if err != nil {
		return runUsageError("run", err)
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
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Open(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge run: %v\n", err)
		return 1
	}
	select {
	case s := <-sig:
		logger.Info("stopping", "signal", signalName(s))
		cancel()
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

const runAbout = `Runs the daemon in the foreground until SIGINT or SIGTERM; the service runs
this with --service. Each flag is also the environment variable
SHOPBRIDGE_<NAME> (upper case, - as _) and a key of the TOML config file;
a flag beats the environment, which beats the file, which beats the default.`

// runHelp is the help of a command that takes the flags of run.
func runHelp(cmd, args, about string) *cmdFlags {
	c := newFlags(cmd, args, about)
	c.more, c.moreTitle = runFlags(), "Flags:"
	if cmd != "run" {
		c.moreTitle = "Flags of shopbridge run, kept for the service:"
	}
	return c
}

// runUsageError reports a bad run flag, environment variable or config
// file in one line and returns exit code 2.
func runUsageError(cmd string, err error) int {
	var ue *usageError
	if errors.As(err, &ue) && ue.Syntax() {
		return usageFail(cmd, err.Error())
	}
	fmt.Fprintf(os.Stderr, "shopbridge %s: %v\n", cmd, err)
	return 2
}

// signalName is a signal as an operator knows it: SIGTERM from systemctl
// or kill, SIGINT from Ctrl-C.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
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
