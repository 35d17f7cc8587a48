package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/shopbridge/shopbridge/storage"
)

const restoreAbout = `Installs a backup FILE (from shopbridge backup or the scheduled backups) as
the store of the data directory. It stops nothing itself: it refuses while a
daemon runs on that directory. It checks FILE first (bbolt's consistency
check, a shopbridge store), keeps the current store as
shopbridge.db.before-restore-<time>, marks as delivered the receipts of the
backup's outbox that the current store had sent since (when it can still be
read), and then installs the backup in one rename. When the daemon starts,
it sends the backup's outbox to the upstream.`

func cmdRestore(args []string) int {
	c := newFlags("restore", "FILE", restoreAbout)
	config := c.String("config", "", "the `PATH` of the config file run reads, for its data directory "+
		"(default: SHOPBRIDGE_CONFIG, else the default config file)")
	data := c.String("data", "", "the data `DIR` to restore into (default: run's --data: SHOPBRIDGE_DATA, the config file, else the default)")
	force := c.Bool("force", false, "restore even though the current store holds receipts, not yet sent upstream, that the backup lacks")
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) != 1 {
		return c.fail("want one argument, the backup FILE to restore, got %d", len(c.positional()))
	}
	file := c.positional()[0]
	dir := *data
	if dir == "" {
		cfg, err := (daemonFlags{config: config}).runConfig()
		if err != nil {
			return runUsageError("restore", err)
		}
		dir = cfg.DataDir
	}
	rep, err := storage.Restore(file, dir, storage.RestoreOptions{Force: *force})
	if errors.Is(err, storage.ErrInUse) {
		fmt.Fprintf(os.Stderr, "shopbridge restore: %v: stop it first (%s), then run restore again\n", err, howToStop())
		return 1
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge restore: %v\n", err)
		return 1
	}
	fmt.Printf("restored %s as %s: %d bills, %d receipts, %d in the outbox, %d parked\n",
		file, rep.Store, rep.Counts.Bills, rep.Counts.Receipts, rep.Counts.Outbox, rep.Counts.Parked)
	if rep.Before != "" {
		fmt.Printf("the store before the restore is kept as %s\n", rep.Before)
	}
	if rep.Delivered > 0 {
		fmt.Printf("%d receipts of the backup's outbox had been delivered since the backup: marked delivered, not sent again\n", rep.Delivered)
	}
	if rep.Lost > 0 {
		fmt.Printf("warning: %d receipts of the store before (%d not yet sent upstream) are not in the backup; they stay in %s\n",
			rep.Lost, rep.LostQueued, rep.Before)
	}
	if rep.CurrentUnread != "" {
		fmt.Printf("note: the store before could not be read (%s): receipts it delivered after the backup was taken are sent again, with the same event ids\n",
			rep.CurrentUnread)
	}
	fmt.Printf("start the daemon: %s\n", howToStart())
	return 0
}

func howToStop() string {
	switch runtime.GOOS {
	case "linux":
		return "sudo systemctl stop shopbridge, or sudo shopbridge stop; or end the shopbridge run that uses it"
	case "windows":
		return "shopbridge stop in an Administrator prompt, or Services > shopbridge > Stop"
	}
	return "shopbridge stop, or end the shopbridge run that uses it"
}

func howToStart() string {
	switch runtime.GOOS {
	case "linux":
		return "sudo systemctl start shopbridge (or sudo shopbridge start)"
	case "windows":
		return "shopbridge start in an Administrator prompt, or Services > shopbridge > Start"
	}
	return "shopbridge start"
}
