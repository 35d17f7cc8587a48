package main

import (
	"fmt"
	"io"
	"time"

	"github.com/shopbridge/shopbridge/api"
)

// writeBackupStatus prints the scheduled backups' lines of status: the last
// good backup (when, size, where), a warning when it is too old, and the
// last failure while there is one.
func writeBackupStatus(w io.Writer, st *api.Status, now time.Time) {
	b := st.Backup
	switch {
	case b.Dir == "":
		return // a daemon without scheduled backups (older)
	case b.Dir == "none":
		fmt.Fprintln(w, "backups:    off (backup-dir none); make one with: shopbridge backup FILE")
		return
	}
	last := "none yet"
	if b.LastOKAt != nil {
		last = fmt.Sprintf("%s, %.1f MiB, %s", when(*b.LastOKAt, now), float64(b.LastOKBytes)/(1<<20), b.LastOKFile)
	}
	fmt.Fprintf(w, "backup:     last good %s; every %s, next %s\n", last, b.Every, whenNext(b.NextAt, now))
	if b.Stale {
		fmt.Fprintf(w, "backup:     WARNING: the last good backup is older than twice backup-every (%s) or there is none\n", b.Every)
	}
	if b.LastError != "" {
		fmt.Fprintf(w, "backup:     last attempt FAILED %s: %s\n", whenPtr(b.LastErrorAt, now, "?"), oneLine(b.LastError, 300))
	}
}

func whenNext(t *time.Time, now time.Time) string {
	if t == nil {
		return "not planned"
	}
	d := max(t.Sub(now), 0)
	return fmt.Sprintf("%s (in %s)", t.Local().Format("2006-01-02 15:04:05"), roundAgo(d))
}
