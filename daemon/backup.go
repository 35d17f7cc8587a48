package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// Scheduled backups: every backup-every, a snapshot of the store (the same
// spool as GET /admin/api/backup, so no read transaction waits on the backup
// disk) is copied to a temporary name in backup-dir, fsynced, checked
// (bbolt's consistency check, and the counts of bills, receipts, outbox and
// parked read back against the snapshot's), renamed to its final name and
// the folder fsynced; only then do the oldest beyond backup-keep go. A
// failure is logged once (again only when its reason changes), kept in the
// status and the metrics, and retried at the next slot; it never touches
// the backups already there.

// backupFirstDelay is how soon after start the first backup runs when the
// folder holds none newer than backup-every: late enough that a start is
// not slowed, soon enough that a new install has one the same day.
const backupFirstDelay = 2 * time.Minute

// backupPrefix and backupSuffix frame the scheduled backups' names, the only files
// rotation ever removes.
const backupPrefix, backupSuffix = "shopbridge-", ".db"

const backupTimeFormat = "20060102T150405Z"

func backupName(t time.Time) string {
	return backupPrefix + t.UTC().Format(backupTimeFormat) + backupSuffix
}

// backupTime is the time in a scheduled backup's name; ok is false for any
// other file.
func backupTime(name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, backupPrefix)
	if !ok {
		return time.Time{}, false
	}
	if s, ok = strings.CutSuffix(s, backupSuffix); !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(backupTimeFormat, s)
	return t, err == nil
}

// backups runs the scheduled backups.
type backups struct {
	store  *storage.Store
	dir    string
	every  time.Duration
	keep   int
	logger *slog.Logger
	now    func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	st       shopbridge.BackupStatus
	lastOK   time.Time
	lastErr  time.Time
	failures uint64
	loggedAs string // the failure last logged, so a repeat is not
}

func newBackups(store *storage.Store, cfg Config, logger *slog.Logger) *backups {
	b := &backups{store: store, dir: cfg.BackupDir, every: cfg.BackupEvery, keep: cfg.BackupKeep,
		logger: logger.With("part", "backup"), now: time.Now}
	if b.every <= 0 {
		b.every = 24 * time.Hour
	}
	if b.keep <= 0 {
		b.keep = 7
	}
	b.st = shopbridge.BackupStatus{Dir: b.dir, Every: b.every.String()}
	if b.dir == "" {
		b.st.Dir = "none"
	}
	return b
}

// open finds the newest backup already in the folder and starts the loop.
func (b *backups) open() {
	if b.dir == "" {
		return
	}
	if name, t, size, ok := newestBackup(b.dir); ok {
		b.lastOK = t
		b.st.LastOKAt, b.st.LastOKFile, b.st.LastOKBytes = &t, filepath.Join(b.dir, name), size
	}
	first := b.now().Add(min(backupFirstDelay, b.every))
	if !b.lastOK.IsZero() && b.lastOK.Add(b.every).After(first) {
		first = b.lastOK.Add(b.every)
	}
	b.setNext(first)
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Add(1)
	go b.loop(ctx, first)
}

func (b *backups) close() {
	if b.cancel != nil {
		b.cancel()
		b.wg.Wait()
	}
}

func (b *backups) setNext(t time.Time) {
	b.mu.Lock()
	b.st.NextAt = &t
	b.mu.Unlock()
}

func (b *backups) loop(ctx context.Context, next time.Time) {
	defer b.wg.Done()
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		b.run(ctx)
		next := b.now().Add(b.every)
		b.setNext(next)
		timer.Reset(time.Until(next))
	}
}

// run makes one backup and records the outcome.
func (b *backups) run(ctx context.Context) {
	start := b.now()
	path, size, err := b.backup(ctx, start)
	if ctx.Err() != nil {
		return // stopped midway: not a failure of the backup disk
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failures++
		b.lastErr = b.now()
		t := b.lastErr
		b.st.LastError, b.st.LastErrorAt = err.Error(), &t
		if b.loggedAs != err.Error() {
			b.loggedAs = err.Error()
			b.logger.Error("scheduled backup failed; the backups already there are untouched, the next try is at the next slot",
				"dir", b.dir, "err", err, "next_in", b.every.String())
		}
		return
	}
	b.lastOK = start
	t := start
	b.st.LastOKAt, b.st.LastOKFile, b.st.LastOKBytes = &t, path, size
	b.st.LastError, b.st.LastErrorAt = "", nil
	if b.loggedAs != "" {
		b.logger.Info("scheduled backups work again", "file", path)
	} else {
		b.logger.Info("scheduled backup made and checked", "file", path, "bytes", size,
			"took_ms", time.Since(start).Milliseconds())
	}
	b.loggedAs = ""
}

// backup writes, checks and installs one backup, then rotates.
func (b *backups) backup(ctx context.Context, at time.Time) (path string, size int64, err error) {
	if fi, err := os.Stat(b.dir); err != nil || !fi.IsDir() {
		if errors.Is(err, os.ErrNotExist) && b.dir == filepath.Join(filepath.Dir(b.store.Path()), "backups") {
			// The default folder is made on first use; a named one that
			// is gone (a USB stick pulled out) is a failure.
			if err := os.Mkdir(b.dir, 0o750); err != nil {
				return "", 0, fmt.Errorf("create the backup folder: %w", err)
			}
		} else if err != nil {
			return "", 0, fmt.Errorf("the backup folder %s is not there (%w): is the disk plugged in?", b.dir, errors.Unwrap(err))
		} else {
			return "", 0, fmt.Errorf("the backup folder %s is not a folder", b.dir)
		}
	}
	sn, err := b.store.Snapshot(ctx, filepath.Dir(b.store.Path()))
	if err != nil {
		return "", 0, err
	}
	defer sn.Close()
	name := backupName(at)
	final := filepath.Join(b.dir, name)
	tmp := filepath.Join(b.dir, "."+name+".tmp")
	if err := writeSnapshot(ctx, tmp, sn); err != nil {
		os.Remove(tmp)
		return "", 0, fmt.Errorf("write a backup into %s: %w", b.dir, diskAdvice(pathless(err)))
	}
	got, err := storage.CheckFileCounts(tmp)
	if err == nil {
		if w := sn.Counts; got.Bills != w.Bills || got.Receipts != w.Receipts || got.Outbox != w.Outbox || got.Parked != w.Parked {
			err = fmt.Errorf("counts read back differ: bills %d/%d, receipts %d/%d, outbox %d/%d, parked %d/%d",
				got.Bills, w.Bills, got.Receipts, w.Receipts, got.Outbox, w.Outbox, got.Parked, w.Parked)
		}
	}
	if err != nil {
		os.Remove(tmp)
		return "", 0, fmt.Errorf("the backup written to %s failed its check (removed): %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return "", 0, fmt.Errorf("rename the new backup in %s: %w", b.dir, pathless(err))
	}
	syncDir(b.dir)
	b.rotate(name)
	return final, sn.Size, nil
}

// rotate removes the oldest scheduled backups beyond keep; never newest,
// the one just made, nor any file not named like a scheduled backup.
func (b *backups) rotate(newest string) {
	names := backupNames(b.dir)
	for len(names) > b.keep {
		if names[0] == newest {
			break
		}
		if err := os.Remove(filepath.Join(b.dir, names[0])); err != nil {
			b.logger.Warn("could not remove an old backup", "file", filepath.Join(b.dir, names[0]), "err", err)
		} else {
			b.logger.Info("removed an old backup", "file", filepath.Join(b.dir, names[0]), "keep", b.keep)
		}
		names = names[1:]
	}
}

// backupNames are the scheduled backups in dir, oldest first.
func backupNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if _, ok := backupTime(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // the time in the name sorts as text
	return names
}

func newestBackup(dir string) (name string, t time.Time, size int64, ok bool) {
	names := backupNames(dir)
	if len(names) == 0 {
		return "", time.Time{}, 0, false
	}
	name = names[len(names)-1]
	t, _ = backupTime(name)
	if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
		size = fi.Size()
	}
	return name, t, size, true
}

// writeSnapshot writes sn to a new file at path, paced and synced
// (Snapshot.CopyTo). It ends when ctx does: a daemon that stops does not
// wait for a backup to a slow disk to finish.
func writeSnapshot(ctx context.Context, path string, sn *storage.Snapshot) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = sn.CopyTo(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pathless is err without the file name it names: a temporary name
// changes at every slot, and the same failure should read the same.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// diskAdvice says what a write error means for the person reading it.
func diskAdvice(err error) error {
	switch {
	case isNoSpace(err):
		return fmt.Errorf("%w (the backup disk is full: free space there or lower backup-keep)", err)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w (the service's user may not write there)", err)
	}
	return err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// status is the backups' part of the status.
func (b *backups) status() shopbridge.BackupStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.st
	if b.dir != "" {
		if b.lastOK.IsZero() {
			st.Stale = !b.lastErr.IsZero()
		} else {
			st.Stale = b.now().Sub(b.lastOK) > 2*b.every
		}
	}
	return st
}

var (
	backupLastSuccess = shopbridge.Metric{Name: "shopbridge_backup_last_success_timestamp_seconds", Type: "gauge",
		Help: "Unix time of the newest good scheduled backup; 0 before any."}
	backupLastFailure = shopbridge.Metric{Name: "shopbridge_backup_last_failure_timestamp_seconds", Type: "gauge",
		Help: "Unix time of the last failed scheduled backup; 0 before any."}
	backupFailures = shopbridge.Metric{Name: "shopbridge_backup_failures_total", Type: "counter",
		Help: "Scheduled backups that failed since start."}
	backupLastSize = shopbridge.Metric{Name: "shopbridge_backup_last_size_bytes", Type: "gauge",
		Help: "Size of the newest good scheduled backup."}
	backupInterval = shopbridge.Metric{Name: "shopbridge_backup_interval_seconds", Type: "gauge",
		Help: "backup-every in seconds; 0 when scheduled backups are off (backup-dir none)."}
)

func unixOrZero(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// WriteMetrics writes the backup metrics.
func (b *backups) WriteMetrics(w io.Writer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	backupLastSuccess.Write(w, unixOrZero(b.lastOK))
	backupLastFailure.Write(w, unixOrZero(b.lastErr))
	backupFailures.Write(w, float64(b.failures))
	backupLastSize.Write(w, float64(b.st.LastOKBytes))
	interval := b.every.Seconds()
	if b.dir == "" {
		interval = 0
	}
	backupInterval.Write(w, interval)
}
