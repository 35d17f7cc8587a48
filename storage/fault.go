package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// A commit that fails at the disk (full, read-only, failing) makes the store
// degraded: the failing write is an EUNAVAILABLE error (503 to a register,
// which keeps the receipt and sends it again), /healthz, status and metrics
// say so, and the log says it once. Reads go on as before. While degraded, a
// probe tries every ProbeEvery whether the store can write again, so it comes
// back by itself even when no register posts.
//
// What a failed commit leaves behind, in bbolt 1.4: Commit writes the dirty
// pages (pwrite), fdatasyncs, then writes and fdatasyncs the meta page, and
// on any failure rolls back, rebuilding its free list from the meta page it
// sees. A full disk fails the pwrite of pages beyond the old end of the file
// (grow only truncates, which allocates nothing): the meta page is untouched
// and the store is exactly the last committed one. The hard case is a failed
// fdatasync of the meta page (EIO, or ENOSPC on a copy-on-write or network
// file system): the new meta page is then in the page cache, so bbolt's view
// is the new transaction, but whether it reached the disk is unknown (after
// a failed fsync, Linux marks the pages clean: PostgreSQL's "fsyncgate").
// Reopening the file would read the same page cache and gain nothing. What
// makes that state safe is the next successful commit: its data pages and
// its meta page (in the other meta slot) are fdatasynced, and it references
// every page the uncertain one did. So the store stays degraded until the
// probe's commit succeeds, and while degraded nothing is acknowledged from
// what is merely visible: a repeated receipt goes through a commit instead
// of being answered 200 from a read (see AcceptReceipt).

// Fault reasons, as /healthz, status and metrics name them.
const (
	FaultDiskFull = "disk full"
	FaultReadOnly = "read-only file system"
	FaultIO       = "I/O error"
	FaultWrite    = "write failed" // any other failed commit
)

// Faults lists every fault reason, for metrics with one series each.
var Faults = []string{FaultDiskFull, FaultReadOnly, FaultIO, FaultWrite, FaultDamaged, FaultReadFault}

// ProbeEvery is how often a degraded store tries to write again.
const ProbeEvery = 2 * time.Second

// ProbeBytes is the room the probe wants on the file system before it tries
// a commit: the largest receipt shopbridge accepts (1 MiB). A store that had
// just a few pages free would otherwise flap between degraded and not.
const ProbeBytes = shopbridge.MaxBody

// Store states in Health.
const (
	StateOK       = "ok"
	StateDegraded = "degraded"
)

// Health is whether the store can write, for /healthz, status and metrics.
type Health struct {
	State         string    `json:"state"`            // StateOK or StateDegraded
	Reason        string    `json:"reason,omitempty"` // one of Faults while degraded
	Since         time.Time `json:"since,omitzero"`   // when it became degraded
	Error         string    `json:"error,omitempty"`  // the last failure as the OS said it
	FailedCommits uint64    `json:"failed_commits"`   // since start
}

// Health reports whether the store can write.
func (s *Store) Health() Health {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	h := s.health
	if h.State == "" {
		h.State = StateOK
	}
	h.FailedCommits = s.failed.Load()
	return h
}

// Degraded reports whether the last write failed at the disk and no probe
// has written since.
func (s *Store) Degraded() bool { return s.degraded.Load() }

// faultReason names what failed in a commit error.
func faultReason(err error) string {
	for _, f := range []struct {
		reason string
		errnos []syscall.Errno
	}{{FaultDiskFull, diskFullErrnos}, {FaultReadOnly, readOnlyErrnos}, {FaultIO, ioErrnos}} {
		for _, e := range f.errnos {
			// bbolt's grow formats its cause with %s, not %w: match
			// the text too.
			if errors.Is(err, e) || strings.Contains(err.Error(), e.Error()) {
				return f.reason
			}
		}
	}
	return FaultWrite
}

// commitFailed records a commit that failed at the disk and returns the
// caller's error: EUNAVAILABLE with a reason for people, the cause wrapped
// for logs.
func (s *Store) commitFailed(err error) error {
	reason := faultReason(err)
	s.failed.Add(1)
	s.healthMu.Lock()
	if !s.degraded.Load() || s.health.Reason != reason {
		since := time.Now()
		if s.degraded.Load() {
			since = s.health.Since
		}
		s.health = Health{State: StateDegraded, Reason: reason, Since: since, Error: err.Error()}
		// Once per change, not per request: the store's own line.
		s.logger.Error("store degraded: "+reason+"; writes fail (receipts get 503) until it recovers",
			"reason", reason, "path", s.path, "err", err)
		if !s.degraded.Swap(true) && !s.isClosing() {
			s.probes.Add(1)
			go s.probeLoop()
		}
	} else {
		s.health.Error = err.Error()
	}
	s.healthMu.Unlock()
	return fmt.Errorf("%w: %w", shopbridge.Errorf(shopbridge.EUNAVAILABLE, "store",
		"nothing was saved: the store cannot write (%s); try again later", reason), err)
}

func (s *Store) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// probeLoop tries to write every ProbeEvery until the store recovers or
// closes.
func (s *Store) probeLoop() {
	defer s.probes.Done()
	t := time.NewTimer(ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		if s.isDamaged.Load() {
			return // no write can help (guard.go)
		}
		if s.probe() {
			return
		}
		t.Reset(ProbeEvery)
	}
}

// probe checks for ProbeBytes of room with a scratch file beside the store,
// then commits a real write; it clears the degraded state when both work.
func (s *Store) probe() bool {
	scratch := s.path + ".probe"
	err := writeScratch(scratch, ProbeBytes)
	os.Remove(scratch)
	if err != nil {
		s.healthMu.Lock()
		s.health.Error = err.Error()
		s.healthMu.Unlock()
		return false
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	if err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyProbedAt, []byte(at)) }); err != nil {
		return false
	}
	s.healthMu.Lock()
	h := s.health
	s.health = Health{}
	s.degraded.Store(false)
	s.healthMu.Unlock()
	msg := "store writes again"
	if h.Reason == FaultDiskFull {
		msg = "disk space back: store writes again"
	}
	s.logger.Info(msg, "reason", h.Reason, "path", s.path, "degraded_for", time.Since(h.Since).Round(time.Second).String())
	return true
}

var keyProbedAt = []byte("probed_at")

// writeScratch writes n bytes to a new file; the bytes are real, not a hole,
// so a full file system refuses them.
func writeScratch(path string, n int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for n > 0 && err == nil {
		k := min(n, len(buf))
		_, err = f.Write(buf[:k])
		n -= k
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// MarkerName is the file Open writes beside a store once it has opened it,
// holding the instance id. Its presence tells a store that was cut to zero
// bytes from a new one (see checkEmpty).
const MarkerName = FileName + ".id"

// checkEmpty refuses a store file of zero bytes unless its directory is
// otherwise new. bbolt makes a new store by creating the file and then
// writing its first four pages; a crash in between leaves zero bytes, and
// so may a crash or a full disk during a copy over the store (a restore) or
// a file system that lost the file's data. Only the first case is safe to
// start over from, and there the directory holds nothing else: no marker
// (MarkerName, written by the first start that opened the store), no
// backups, nothing but the empty file and config files (*.toml; on Windows
// the config lives in the data directory).
func checkEmpty(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > 0 || !fi.Mode().IsRegular() {
		return nil // missing: bbolt makes it; anything else bbolt reports
	}
	if dirIsNew(filepath.Dir(path)) {
		return nil
	}
	return &DamageError{Path: path, What: "the file is empty (0 bytes)", Line: fmt.Sprintf("store %s is empty (0 bytes): it was probably cut short by a crash or a full disk; "+
		"restore a backup over it (see README: Backup and restore) or, on a new install, delete it; "+
		"`shopbridge restore FILE` restores one (see docs/recovery.md)", path)}
}

func dirIsNew(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name() != FileName && !strings.HasSuffix(strings.ToLower(e.Name()), ".toml") {
			return false
		}
	}
	return true
}

// writeMarker writes MarkerName once; failing to is not fatal (the store
// works without it), so it only logs.
func (s *Store) writeMarker() {
	path := filepath.Join(filepath.Dir(s.path), MarkerName)
	if _, err := os.Stat(path); err == nil {
		return
	}
	err := func() error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = f.WriteString(s.instanceID + "\n")
		if serr := f.Sync(); err == nil {
			err = serr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}()
	if err != nil {
		os.Remove(path)
		s.logger.Warn("could not write the store marker", "path", path, "err", err)
		return
	}
	syncDir(filepath.Dir(path))
}
