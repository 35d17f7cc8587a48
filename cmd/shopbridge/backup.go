package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/shopbridge/shopbridge/storage"
)

func init() {
	register(&command{name: "backup", usage: "save a consistent snapshot of the running daemon's store: backup FILE", run: backupCmd})
}

func backupCmd(args []string) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	addr := addrFlag(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "shopbridge backup: want one argument, the file to write")
		return 2
	}
	dst := fs.Arg(0)
	resp, err := adminGet(daemonURL(*addr), "/admin/api/backup", 30*time.Minute)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	// Write next to the target and rename, so a failed backup never leaves
	// a half file under the name.
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".shopbridge-backup-*")
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: %v\n", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: writing %s: %v\n", dst, err)
		return 1
	}
	if err := storage.CheckFile(tmp.Name()); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: the snapshot failed its check: %v\n", err)
		return 1
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: %v\n", err)
		return 1
	}
	fmt.Printf("backup: %s (%d bytes), checked\n", dst, n)
	return 0
}
