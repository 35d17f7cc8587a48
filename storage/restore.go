package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
)

// ErrInUse is Restore's refusal while a daemon holds the store.
var ErrInUse = errors.New("the store is in use by a running shopbridge")

// RestoreReport says what Restore did.
type RestoreReport struct {
	Store  string // the store installed
	Before string // where the store it replaced was kept; "" if there was none
	Counts Stats  // what the installed store holds
	// Delivered: receipts waiting in the backup's outbox (or parked) that
	// the replaced store had delivered since; Restore marked them delivered
	// so they are not sent again.
	Delivered int
	// Lost: receipts the replaced store had and the backup lacks (accepted
	// after the backup was taken); still in the Before file. LostQueued of
	// them had not reached the upstream yet.
	Lost, LostQueued int
	// CurrentUnread is why the replaced store could not be read (damaged):
	// then nothing could be reconciled with it.
	CurrentUnread string
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force installs the backup even though the store it replaces holds
	// receipts not yet sent upstream that the backup lacks.
	Force bool
	Now   time.Time // names the Before file; zero: now
}

// Restore installs the backup file as the store of dataDir. It refuses
// (ErrInUse) while a daemon holds the store; checks the backup (bbolt's
// consistency check, the counts, a shopbridge store this build reads);
// copies it beside the store and checks the copy; reconciles it with the
// store it replaces when that one is readable (receipts delivered since the
// backup are marked delivered; receipts the backup lacks that still wait
// for the upstream refuse the restore unless Force); keeps the replaced
// store as FileName.before-restore-<time> (a hard link, so the store's name
// is never missing) and renames the copy over the store.
func Restore(backup, dataDir string, opts RestoreOptions) (RestoreReport, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	store := filepath.Join(dataDir, FileName)
	rep := RestoreReport{Store: store}
	if inUse, err := InUse(store); err != nil {
		return rep, fmt.Errorf("cannot tell whether %s is in use: %w", store, err)
	} else if inUse {
		return rep, fmt.Errorf("%w: %s", ErrInUse, store)
	}
	if _, err := CheckFileCounts(backup); err != nil {
		return rep, fmt.Errorf("the backup %s failed its check, nothing was changed: %w", backup, err)
	}
	tmp := filepath.Join(dataDir, "."+FileName+".restore-tmp")
	if err := copyFileSynced(tmp, backup); err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("copy %s into %s, nothing was changed: %w", backup, dataDir, err)
	}
	defer os.Remove(tmp) // gone by rename on success
	_, hadStore := os.Stat(store)
	if hadStore == nil {
		if err := reconcile(tmp, store, &rep); err != nil {
			return rep, err
		}
		if rep.LostQueued > 0 && !opts.Force {
			return rep, fmt.Errorf("the store %s holds %d receipts the backup lacks, %d of them not yet sent upstream: "+
				"restoring would drop them from the outbox; nothing was changed (use --force to restore anyway: the current store is kept as %s.before-restore-<time>)",
				store, rep.Lost, rep.LostQueued, FileName)
		}
	}
	counts, err := CheckFileCounts(tmp)
	if err != nil {
		return rep, fmt.Errorf("the copy %s failed its check, nothing was changed: %w", tmp, err)
	}
	rep.Counts = counts
	if err := chownLike(tmp, store); err != nil {
		return rep, fmt.Errorf("give %s the store's owner: %w", tmp, err)
	}
	if hadStore == nil {
		rep.Before = store + ".before-restore-" + opts.Now.UTC().Format("20060102T150405Z")
		if err := os.Link(store, rep.Before); err != nil {
			// No hard links (FAT): a copy.
			if err := copyFileSynced(rep.Before, store); err != nil {
				os.Remove(rep.Before)
				return rep, fmt.Errorf("keep the current store as %s, nothing was changed: %w", rep.Before, err)
			}
		}
	}
	// The last check: a daemon may have started meanwhile.
	if inUse, _ := InUse(store); inUse {
		return rep, fmt.Errorf("%w: %s (it started during the restore; the store is unchanged)", ErrInUse, store)
	}
	if err := os.Rename(tmp, store); err != nil {
		return rep, fmt.Errorf("install the backup as %s: %w", store, err)
	}
	syncDir(dataDir)
	return rep, nil
}

// reconcile compares the backup copy tmp with the store it replaces. A
// store that cannot be read (the usual reason for a restore) is noted in
// rep and is not an error.
func reconcile(tmp, current string, rep *RestoreReport) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var delivered map[string]time.Time
	func() {
		defer func() {
			if r := recover(); r != nil {
				rep.CurrentUnread = fmt.Sprint("reading it failed: ", r)
			}
		}()
		cur, err := Open(current, Options{ReadOnly: true, Logger: quiet, LockTimeout: 100 * time.Millisecond})
		if err != nil {
			rep.CurrentUnread = err.Error()
			return
		}
		defer cur.Close()
		bak, err := Open(tmp, Options{ReadOnly: true, Logger: quiet})
		if err != nil {
			rep.CurrentUnread = err.Error() // cannot happen: tmp was checked
			return
		}
		defer bak.Close()
		delivered, err = compareReceipts(cur, bak, rep)
		if err != nil {
			rep.CurrentUnread = err.Error()
		}
	}()
	if len(delivered) == 0 {
		return nil
	}
	s, err := Open(tmp, Options{Logger: quiet})
	if err != nil {
		return fmt.Errorf("open the copy %s, nothing was changed: %w", tmp, err)
	}
	defer s.Close()
	for id, at := range delivered {
		if err := s.MarkDelivered(id, at); err != nil {
			return fmt.Errorf("mark receipt %s delivered in the copy, nothing was changed: %w", id, err)
		}
		rep.Delivered++
	}
	return nil
}

// compareReceipts finds the receipts queued or parked in bak that cur has
// delivered (with their time), and counts those cur has that bak lacks.
func compareReceipts(cur, bak *Store, rep *RestoreReport) (map[string]time.Time, error) {
	var waiting []string
	err := bak.view(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketOutbox, bucketParked} {
			if err := tx.Bucket(name).ForEach(func(_, id []byte) error {
				waiting = append(waiting, string(id))
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	delivered := map[string]time.Time{}
	err = cur.view(func(tx *bolt.Tx) error {
		receipts := tx.Bucket(bucketReceipts)
		for _, id := range waiting {
			v := receipts.Get([]byte(id))
			if v == nil {
				continue
			}
			r, err := decodeReceipt(id, v)
			if err != nil {
				return err
			}
			if r.State == shopbridge.ReceiptDelivered {
				delivered[id] = r.DeliveredAt
			}
		}
		return bak.view(func(btx *bolt.Tx) error {
			had := btx.Bucket(bucketReceipts)
			return receipts.ForEach(func(k, v []byte) error {
				if had.Get(k) != nil {
					return nil
				}
				rep.Lost++
				r, err := decodeReceipt(string(k), v)
				if err != nil {
					return err
				}
				if r.State != shopbridge.ReceiptDelivered {
					rep.LostQueued++
				}
				return nil
			})
		})
	})
	return delivered, err
}

func copyFileSynced(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
