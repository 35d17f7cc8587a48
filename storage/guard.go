package storage

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// Damage met while serving. bbolt reads the store through a memory map and
// trusts what it finds there: a damaged page makes it panic, and a page it
// cannot read (a failing disk, a file cut short under the daemon) is a
// SIGBUS, which the Go runtime turns into "fatal error: fault" unless the
// goroutine asked for a panic instead (debug.SetPanicOnFault). Every
// transaction of this package runs inside guard, which asks for that panic
// and recovers it (and bbolt's own panics) into an error and the damaged
// state: the store is degraded for good (writes answer 503, /healthz 503,
// the reason in status), no probe brings it back, and nothing more is
// written to a file that cannot be trusted. Reads go on: most of a
// damaged store still answers, and what does not fails alone. bbolt's
// Update and View roll the transaction back in a deferred call, so a
// recovered panic leaves no lock held.

// Further fault reasons (see Faults).
const (
	FaultDamaged   = "store damaged"
	FaultReadFault = "read error"
)

// OpenBudget is how many pages a read-write Open checks before it
// answers (see checkPages); a store with more is checked in full in the
// background after Open. A read-only Open checks them all. 32,768 pages of 4 KiB are 128 MiB: on the 1 GiB store of
// bench/mkstore the whole check took about a second warm (docs/recovery.md).
var OpenBudget = 32768

// guard runs fn (one transaction) with memory faults turned into panics,
// and turns any panic into an EUNAVAILABLE error and the damaged state.
func (s *Store) guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = s.damaged(r)
		}
	}()
	return fn()
}

// damaged records a panic met in a transaction and returns the caller's
// error.
func (s *Store) damaged(r any) error {
	reason, detail := FaultDamaged, fmt.Sprint(r)
	var re runtime.Error
	if errors.As(asError(r), &re) {
		if _, ok := r.(interface{ Addr() uintptr }); ok {
			// A fault at an address: the disk failed a read of the map,
			// or the file is shorter than the map.
			reason = FaultReadFault
			detail = "a read of the store's file through its memory map failed (SIGBUS: the disk failed the read, or the file is shorter than the store)"
		}
	}
	s.markDamaged(reason, detail)
	return fmt.Errorf("%w: %s", shopbridge.Errorf(shopbridge.EUNAVAILABLE, "store",
		"the store is damaged or cannot be read (%s): nothing was read or saved", reason), detail)
}

func asError(r any) error {
	if e, ok := r.(error); ok {
		return e
	}
	return fmt.Errorf("%v", r)
}

// markDamaged puts the store in the damaged state, once; the log says it
// in one line (no stack: an owner reads it), the rest only update the error.
func (s *Store) markDamaged(reason, detail string) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.failed.Add(1)
	if s.isDamaged.Load() {
		s.health.Error = detail
		return
	}
	since := time.Now()
	s.health = Health{State: StateDegraded, Reason: reason, Since: since, Error: detail}
	s.isDamaged.Store(true)
	s.degraded.Store(true)
	s.logger.Error("store degraded: "+reason+"; writes fail (receipts get 503) until the store is restored from a backup",
		"reason", reason, "path", s.path, "err", detail)
}

// Damaged reports whether the store met damage or a failing read since it
// opened; only a restart after a restore clears it.
func (s *Store) Damaged() bool { return s.isDamaged.Load() }

// errDamaged is what a write gets from a damaged store, before bbolt is
// asked for anything.
func (s *Store) errDamaged() error {
	h := s.Health()
	return shopbridge.Errorf(shopbridge.EUNAVAILABLE, "store",
		"nothing was saved: the store cannot be written safely (%s); it needs a restore from a backup", h.Reason)
}

// preCheck checks the file at path before bbolt maps it, reading at most
// budget pages of its tree. It returns whether the whole tree was read.
func preCheck(path string, budget int) (complete bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return true, nil // a new store
		}
		return false, fmt.Errorf("open store %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("open store %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("store %s is not a regular file", path)
	}
	if fi.Size() == 0 {
		return true, nil // checkEmpty has the say
	}
	complete, err = checkPages(f, fi.Size(), budget)
	if err != nil {
		return false, &DamageError{Path: path, What: err.Error()}
	}
	return complete, nil
}

// checkLive checks the whole open store in a read transaction: the meta
// page of that transaction is read from the file, and every page it
// reaches stays as it is while the transaction is open.
func (s *Store) checkLive() (pages int, err error) {
	f, err := os.Open(s.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for range 10 {
		retry := false
		err = s.view(func(tx *bolt.Tx) error {
			best, err := readMetas(f, tx.Size())
			if err != nil {
				return err
			}
			if best.txid != uint64(tx.ID()) {
				// A commit wrote the other slot after this transaction
				// began: read again in a new one.
				retry = true
				return nil
			}
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			pages = int(best.highWater)
			if checkHook != nil {
				checkHook()
			}
			_, err = checkPagesAt(f, fi.Size(), best, -1, s.closing)
			return err
		})
		if !retry {
			return pages, err
		}
	}
	return pages, errors.New("the store changed under every try of the check")
}

// checkHook, set only by tests (export_test.go), runs inside checkLive's
// transaction before the walk.
var checkHook func()

// backgroundCheck checks the whole store once after Open and marks it
// damaged on failure.
func (s *Store) backgroundCheck() {
	defer s.probes.Done()
	start := time.Now()
	pages, err := s.checkLive()
	if s.isClosing() || errors.Is(err, errStopped) {
		return
	}
	if err != nil {
		if shopbridge.ErrorKind(err) == shopbridge.EUNAVAILABLE && s.Damaged() {
			return // guard said it
		}
		s.markDamaged(FaultDamaged, err.Error())
		return
	}
	s.logger.Info("store checked", "path", s.path, "pages", pages, "took", time.Since(start).Round(time.Millisecond).String())
}

// initialMmap maps a store at least twice its size at Open, so that the
// background check's long read transaction rarely meets a commit that
// must grow the map (bbolt's remap waits for every reader). On Windows
// bbolt grows the file to the map's size, so there it stays bbolt's own.
func initialMmap(path string) int {
	if runtime.GOOS == "windows" {
		return 0
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < int64(OpenBudget)*4096 {
		return 0
	}
	return int(min(2*fi.Size(), 1<<40))
}

// CheckPages checks the structure of the store file at path (see
// checkPages), reading at most budget pages of its tree (<0: all); it
// reports whether it read all of them. A damaged file is a *DamageError.
func CheckPages(path string, budget int) (complete bool, err error) {
	return preCheck(path, budget)
}
