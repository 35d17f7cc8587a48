package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/shopbridge/shopbridge/storage"
)

func init() {
	register(&command{name: "backup", usage: "save a checked snapshot of the running daemon's store to FILE", run: backupCmd})
}

const backupAbout = `Saves a consistent snapshot of the running daemon's store to FILE while the
daemon keeps serving, then checks it with bbolt's consistency check. FILE
must not exist yet unless --force is given. To restore: stop the service,
copy FILE over DATA/shopbridge.db, start it.`

func backupCmd(args []string) int {
	c := newFlags("backup", "FILE", backupAbout)
	d := c.daemonFlags()
	force := c.Bool("force", false, "overwrite FILE if it exists")
	if ok, code := c.parse(args); !ok {
		return code
	}
	if len(c.positional()) != 1 {
		return c.fail("want one argument, the FILE to write, got %d", len(c.positional()))
	}
	dst := c.positional()[0]
	if err := checkTarget(dst, *force); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: %v\n", err)
		return 1
	}
	resp, err := adminGet(d.url(), "/admin/api/backup", 30*time.Minute)
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
	// Again: a file may have appeared while the snapshot came.
	if err := checkTarget(dst, *force); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: %v\n", err)
		return 1
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge backup: %v\n", err)
		return 1
	}
	fmt.Printf("backup: %s (%d bytes), checked\n", dst, n)
	return 0
}

// checkTarget refuses to write over a directory, and over an existing file
// unless force: an older backup is worth keeping by mistake.
func checkTarget(dst string, force bool) error {
	fi, err := os.Stat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory; name the file to write, e.g. %s", dst, filepath.Join(dst, "shopbridge-"+time.Now().Format("2006-01-02")+".db"))
	case !force:
		return fmt.Errorf("%s already exists (%d bytes, %s); use --force to overwrite it", dst, fi.Size(), fi.ModTime().Format("2006-01-02 15:04"))
	}
	return nil
}
