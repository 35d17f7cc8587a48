//go:build linux

// Command checkstore measures what the checks of a store cost at start:
// Open with the page check bounded by storage.OpenBudget, the page check of
// the whole file, and storage.CheckFile (the page check, bbolt's own
// tx.Check and the counts). With -cold it first asks the kernel to drop the
// file's pages from the page cache (posix_fadvise DONTNEED), as after a
// reboot. Figures go to stdout, one line each.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/shopbridge/shopbridge/storage"
	"golang.org/x/sys/unix"
)

func main() {
	path := flag.String("store", "", "store file (e.g. DIR/shopbridge.db)")
	cold := flag.Bool("cold", false, "drop the file from the page cache before each step")
	flag.Parse()
	if *path == "" {
		log.Fatal("checkstore: -store is required")
	}
	fi, err := os.Stat(*path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("store %s: %d bytes, open budget %d pages, cold=%v\n", *path, fi.Size(), storage.OpenBudget, *cold)
	step := func(name string, fn func() error) {
		if *cold {
			drop(*path)
		}
		start := time.Now()
		err := fn()
		fmt.Printf("%-28s %8.3f s  err=%v\n", name, time.Since(start).Seconds(), err)
	}
	step("open (bounded page check)", func() error {
		// Read-write, as the daemon opens it (a read-only open checks it
		// all). A store of the current schema gets no commit; Close
		// stops the background check it starts.
		s, err := storage.Open(*path, storage.Options{})
		if err == nil {
			err = s.Close()
		}
		return err
	})
	step("page check, whole file", func() error { _, err := storage.CheckPages(*path, -1); return err })
	step("CheckFile (pages+bbolt)", func() error { return storage.CheckFile(*path) })
}

func drop(path string) {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		log.Fatal(err)
	}
}
