package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/storage"
)

const backupAbout = `Saves a consistent snapshot of the running daemon's store to FILE while the
daemon keeps serving, checks that it arrived whole (its length and SHA-256)
and then with bbolt's consistency check. FILE must not exist yet unless
--force is given. To restore: stop the service, then shopbridge restore FILE.`

func cmdBackup(args []string) int {
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
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("the snapshot was cut short: got %d of %d bytes (the daemon stopped or the connection broke; try again)", n, resp.ContentLength)
	}
	if err == nil {
		err = completeSnapshot(resp, n, h.Sum(nil))
	}
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

// completeSnapshot tells a complete snapshot from a cut one: the daemon
// sends its length (Content-Length) and SHA-256 (api.BackupSHA256Header)
// before the body. A daemon too old to send them is refused: its stream
// cannot be told from a cut one.
func completeSnapshot(resp *http.Response, n int64, sum []byte) error {
	want := resp.Header.Get(api.BackupSHA256Header)
	if want == "" || resp.ContentLength < 0 {
		return fmt.Errorf("the daemon sent no length or checksum with the snapshot (an older shopbridge?): cannot tell whether it is complete")
	}
	if n != resp.ContentLength {
		return fmt.Errorf("the snapshot was cut short: got %d of %d bytes", n, resp.ContentLength)
	}
	if got := hex.EncodeToString(sum); got != want {
		return fmt.Errorf("the snapshot's SHA-256 is %s, the daemon sent %s: it was damaged on the way", got, want)
	}
	return nil
}
