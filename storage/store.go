// Package storage keeps shopbridge's bills, receipts, outbox, journal and
// meta in one bbolt file. It is the only package that imports bbolt; its
// errors are the project's own (shopbridge.Error) or wrap bbolt's with the
// store path.
package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopbridge/shopbridge"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this build writes. A store with a higher
// version was written by a newer shopbridge and is refused; a lower one is
// migrated at open.
const SchemaVersion = 4

// schemaOverride, set at link time (-ldflags -X
// github.com/shopbridge/shopbridge/storage.schemaOverride=3), makes a build
// write a higher schema than it knows, with no-op migrations up to it. It
// exists for the packaging tests of downgrades; never set it in a release.
var schemaOverride string

// schemaVersion is the schema this build writes.
var schemaVersion = func() int {
	var v int
	if _, err := fmt.Sscan(schemaOverride, &v); err == nil && v > SchemaVersion {
		return v
	}
	return SchemaVersion
}()

// FileName is the store's file inside the data directory.
const FileName = "shopbridge.db"

var (
	bucketMeta      = []byte("meta")
	bucketBills     = []byte("bills")      // id -> bill record
	bucketByNumber  = []byte("bills.num")  // number \x00 id -> nil
	bucketByDate    = []byte("bills.date") // date \x00 padded id -> id
	bucketOpen      = []byte("bills.open") // date \x00 padded id -> id: the no-parameter list
	bucketListed    = []byte("bills.listed")
	bucketFresh     = []byte("bills.fresh")
	bucketReceipts  = []byte("receipts") // event id -> receipt record
	bucketOutbox    = []byte("outbox")   // seq -> event id
	bucketParked    = []byte("parked")   // seq -> event id
	bucketJournal   = []byte("journal")  // seq -> entry
	bucketTerminals = []byte("terminals")
	bucketPaidTwice = []byte("bills.paid2") // id -> nil
	// bill id \x00 receipt seq -> event id: the receipts naming a bill
	bucketReceiptsByBill = []byte("receipts.bill")

	allBuckets = [][]byte{bucketMeta, bucketBills, bucketByNumber, bucketByDate, bucketOpen, bucketListed,
		bucketFresh, bucketReceipts, bucketOutbox, bucketParked, bucketJournal, bucketTerminals, bucketPaidTwice, bucketReceiptsByBill,
		bucketJournalRepeats}

	keySchema       = []byte("schema")
	keyInstanceID   = []byte("instance_id")
	keySystem       = []byte("system")
	keySyncedAt     = []byte("synced_at")
	keyJournalBytes = []byte("journal_bytes")

	// Counts kept in meta so that status and metrics never walk a bucket.
	keyBills    = []byte("n_bills")
	keyOpen     = []byte("n_open")
	keyReceipts = []byte("n_receipts")
	keyOutbox   = []byte("n_outbox")
	keyParked   = []byte("n_parked")
)

// storedCounts are the counts kept in meta, each with the bucket whose keys
// it counts and the Stats field it is shown in: migration 2 fills them,
// Check checks them, Stats and snapshots read them.
var storedCounts = []struct {
	key, bucket []byte
	stat        func(*Stats) *int
}{
	{keyBills, bucketBills, func(st *Stats) *int { return &st.Bills }},
	{keyOpen, bucketOpen, func(st *Stats) *int { return &st.OpenBills }},
	{keyReceipts, bucketReceipts, func(st *Stats) *int { return &st.Receipts }},
	{keyOutbox, bucketOutbox, func(st *Stats) *int { return &st.Outbox }},
	{keyParked, bucketParked, func(st *Stats) *int { return &st.Parked }},
}

// Options tune Open.
type Options struct {
	ReadOnly    bool
	LockTimeout time.Duration // how long to wait for another process's lock; default 500ms
	Logger      *slog.Logger
	// MmapSize is bbolt's initial mapping: 0 the default (initialMmapSize),
	// -1 none (bbolt's own growth; tests that need a remap use it).
	MmapSize int
}

// Store is an open shopbridge store.
type Store struct {
	db     *bolt.DB
	path   string
	logger *slog.Logger

	instanceID string
	notify     chan struct{} // a receipt entered the outbox

	commits   atomic.Uint64
	synced    atomic.Uint64 // id of the newest transaction whose commit has synced
	calls     chan *call    // group commit queue; nil when read-only
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	committed chan struct{} // closed when the committer has stopped

	bodies *bodyCache

	// Write health (fault.go): degraded is read on every receipt, the
	// rest under healthMu.
	degraded  atomic.Bool
	isDamaged atomic.Bool   // guard.go: sticky, no probe
	failed    atomic.Uint64 // commits that failed at the disk
	healthMu  sync.Mutex
	health    Health
	probes    sync.WaitGroup

	checking   atomic.Bool  // a Ping waits on the store
	checkStart atomic.Int64 // when it started, Unix ns

	metaMu   sync.RWMutex
	system   string
	syncedAt time.Time
}

// Open opens or creates the store at path (a file; see FileName).
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		if err := checkEmpty(path); err != nil {
			return nil, err
		}
	} else if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return nil, &DamageError{Path: path, What: "the file is empty (0 bytes)"}
	}
	// Before bbolt maps the file: it trusts what it reads there (guard.go).
	// A read-only open (a command) checks the whole file: it has no
	// background to finish the check in, and a command may wait.
	budget := OpenBudget
	if opts.ReadOnly {
		budget = -1
	}
	complete, err := preCheck(path, budget)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, logger: opts.Logger.With("part", "storage"), notify: make(chan struct{}, 1),
		closing: make(chan struct{}), bodies: newBodyCache()}
	var db *bolt.DB
	if err := s.guard(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly, InitialMmapSize: initialMmapSize(opts, path)})
		return err
	}); err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("store %s is locked by another process (is shopbridge already running?)", path)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum),
			shopbridge.ErrorKind(err) == shopbridge.EUNAVAILABLE:
			return nil, &DamageError{Path: path, What: err.Error()}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.db = db
	if err := s.init(opts.ReadOnly); err != nil {
		db.Close()
		if s.Damaged() {
			return nil, &DamageError{Path: path, What: s.Health().Error}
		}
		return nil, err
	}
	if !opts.ReadOnly {
		s.writeMarker()
		s.calls, s.committed = make(chan *call), make(chan struct{})
		go s.committer()
		s.injectHang()
		s.probes.Add(1)
		go s.trimLoop()
		if !complete {
			s.probes.Add(1)
			go s.backgroundCheck()
		}
	}
	return s, nil
}

func (s *Store) init(readOnly bool) error {
	if readOnly {
		return s.db.View(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				return fmt.Errorf("store %s is empty or not a shopbridge store", s.path)
			}
			if v := schemaOf(meta); v > schemaVersion {
				return newerSchemaError(s.path, v)
			}
			s.loadMeta(meta)
			return nil
		})
	}
	// A store that needs nothing written opens without a commit, so that
	// it opens on a full disk too (degraded at its first write).
	ready := false
	if err := s.db.View(func(tx *bolt.Tx) error {
		if ready = !needsInit(tx); ready {
			s.loadMeta(tx.Bucket(bucketMeta))
		}
		return nil
	}); err != nil {
		return err
	}
	if ready {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		version := 0
		if meta != nil {
			version = schemaOf(meta)
		} else if hasBuckets(tx) {
			return fmt.Errorf("store %s has no schema version: not a shopbridge store", s.path)
		}
		if version > schemaVersion {
			return newerSchemaError(s.path, version)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta = tx.Bucket(bucketMeta)
		if meta.Get(keyInstanceID) == nil {
			id := make([]byte, 8)
			if _, err := rand.Read(id); err != nil {
				return err
			}
			if err := meta.Put(keyInstanceID, []byte(hex.EncodeToString(id))); err != nil {
				return err
			}
		}
		if version == 0 {
			version = schemaVersion // a new store needs no migration
		}
		for v := version; v < schemaVersion; v++ {
			s.logger.Info("migrating store", "from", v, "to", v+1, "path", s.path)
			migrate := migrations[v]
			if migrate == nil { // only past SchemaVersion, with schemaOverride
				continue
			}
			if err := migrate(tx); err != nil {
				return fmt.Errorf("migrate store %s from schema %d to %d: %w", s.path, v, v+1, err)
			}
		}
		if err := meta.Put(keySchema, []byte(fmt.Sprint(schemaVersion))); err != nil {
			return err
		}
		s.loadMeta(meta)
		return nil
	})
}

// needsInit reports whether init has anything to write: buckets, the
// instance id or the schema version.
func needsInit(tx *bolt.Tx) bool {
	meta := tx.Bucket(bucketMeta)
	if meta == nil || meta.Get(keyInstanceID) == nil || string(meta.Get(keySchema)) != fmt.Sprint(schemaVersion) {
		return true
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return true
		}
	}
	return false
}

func newerSchemaError(path string, v int) error {
	return fmt.Errorf("store %s has schema version %d, newer than this shopbridge %s understands (%d): install the newer version again or restore a backup",
		path, v, shopbridge.Version, schemaVersion)
}

func schemaOf(meta *bolt.Bucket) int {
	var v int
	fmt.Sscan(string(meta.Get(keySchema)), &v)
	return v
}

func hasBuckets(tx *bolt.Tx) bool {
	found := false
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { found = true; return nil })
	return found
}

func (s *Store) loadMeta(meta *bolt.Bucket) {
	s.instanceID = string(meta.Get(keyInstanceID))
	s.system = string(meta.Get(keySystem))
	if v := meta.Get(keySyncedAt); v != nil {
		s.syncedAt, _ = time.Parse(time.RFC3339Nano, string(v))
	}
}

// migrations[v] moves a store from schema v to v+1 inside one transaction.
var migrations = map[int]func(tx *bolt.Tx) error{
	// Schema 1 kept terminals only in memory; schema 2 keeps them in a
	// bucket, which the bucket creation above adds. Nothing to move.
	1: func(tx *bolt.Tx) error { return nil },
	// Schema 3 keeps counts in meta and the bills paid twice in a bucket of
	// their own, so status never walks the store.
	2: func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, c := range storedCounts {
			if err := putInt(meta, c.key, int64(tx.Bucket(c.bucket).Stats().KeyN)); err != nil {
				return err
			}
		}
		paid := tx.Bucket(bucketPaidTwice)
		return tx.Bucket(bucketBills).ForEach(func(k, v []byte) error {
			if flags, ok := billFlags(v); ok && flags&flagPaidTwice != 0 {
				return paid.Put(k, nil)
			}
			return nil
		})
	},
	// Schema 4 indexes receipts by the bill they name, for the console's
	// bill page; the bucket is created above, the index filled here.
	3: func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketReceiptsByBill)
		return tx.Bucket(bucketReceipts).ForEach(func(k, v []byte) error {
			r, err := decodeReceipt(string(k), v)
			if err != nil {
				return err
			}
			if r.BillID == "" {
				return nil
			}
			return idx.Put(billReceiptKey(r.BillID, r.Seq), k)
		})
	},
}

// addCount moves one of the counts in meta.
func addCount(tx *bolt.Tx, key []byte, delta int64) error {
	meta := tx.Bucket(bucketMeta)
	return putInt(meta, key, getInt(meta, key)+delta)
}

var errClosing = shopbridge.Errorf(shopbridge.EUNAVAILABLE, "store", "the store is closing")

// Close closes the store. It is safe to call twice.
func (s *Store) Close() error {
	if s == nil || s.db == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		s.healthMu.Lock() // no probe starts after this
		close(s.closing)
		s.healthMu.Unlock()
		if s.committed != nil {
			<-s.committed
		}
		s.probes.Wait()
	})
	return s.db.Close()
}

// Path returns the store's file.
func (s *Store) Path() string { return s.path }

// InstanceID is a random id made when the store was created; it names this
// installation in discovery and status.
func (s *Store) InstanceID() string { return s.instanceID }

// Commits is the number of write transactions committed, each one round of
// fsyncs; concurrent receipts share them.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// Healthy reports whether the store is open and readable.
func (s *Store) Healthy() bool {
	return s.view(func(tx *bolt.Tx) error { return nil }) == nil
}

// Ping tells whether the store answers within ctx: a read transaction,
// and the write lock that every commit takes, got and given back at once
// (no commit, no disk write). A commit stuck on a dying disk or a write
// transaction that never ends fails it while reads still pass; the systemd
// watchdog relies on that. At most one ping waits on the store at a time:
// while an earlier one still does, Ping fails at once.
func (s *Store) Ping(ctx context.Context) error {
	if s.isDamaged.Load() {
		// A restart would not cure it, and a daemon that stays up
		// serves what it can still read and says why.
		return nil
	}
	if !s.checking.CompareAndSwap(false, true) {
		return fmt.Errorf("store %s: no answer to a ping started %s ago", s.path, time.Since(time.Unix(0, s.checkStart.Load())).Round(time.Millisecond))
	}
	s.checkStart.Store(time.Now().UnixNano())
	done := make(chan error, 1)
	go func() {
		err := s.view(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketMeta) == nil {
				return fmt.Errorf("store %s has no meta bucket", s.path)
			}
			return nil
		})
		if err == nil && s.calls != nil {
			var tx *bolt.Tx
			if tx, err = s.db.Begin(true); err == nil {
				err = tx.Rollback()
			}
			err = storeErr(err)
		}
		s.checking.Store(false) // before the answer: the next Ping may follow at once
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store %s: no answer after %s (a commit or write transaction hangs)", s.path, time.Since(time.Unix(0, s.checkStart.Load())).Round(time.Millisecond))
	}
}

// update runs fn in a write transaction of its own. A commit that fails
// (fn itself did not) failed at the disk: see commitFailed.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	if s.isDamaged.Load() {
		return s.errDamaged()
	}
	ran := false
	var fnErr error
	err := s.guard(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			ran = true
			id := uint64(tx.ID())
			// bbolt runs commit handlers after the meta page's fdatasync.
			tx.OnCommit(func() {
				s.commits.Add(1)
				s.synced.Store(id)
			})
			fnErr = fn(tx)
			return fnErr
		})
	})
	if err != nil && ran && fnErr == nil && !s.isDamaged.Load() {
		return s.commitFailed(err)
	}
	return storeErr(err)
}

// onDisk reports whether what tx sees is durable. bbolt shows a commit to
// new readers as soon as it has written the meta page, before the
// fdatasync that makes it durable, so a read can see a commit that a power
// cut would still undo. The store's first commit at Open syncs the file,
// so everything an earlier process left is durable too.
func (s *Store) onDisk(tx *bolt.Tx) bool { return uint64(tx.ID()) <= s.synced.Load() }

// batch runs fn in a write transaction it may share with concurrent callers
// (one fsync for all). fn may run more than once and must not keep effects
// outside tx between runs.
func (s *Store) batch(fn func(tx *bolt.Tx) error) error { return s.call(fn, false) }

// batchBackground is batch for the sync's records of what the upstream
// answered (a receipt delivered, failed, parked): they may wait a while
// for company (backgroundLinger), and a register's call never waits for
// them.
func (s *Store) batchBackground(fn func(tx *bolt.Tx) error) error { return s.call(fn, true) }

func (s *Store) call(fn func(tx *bolt.Tx) error, background bool) error {
	if s.calls == nil { // read-only
		return s.update(fn)
	}
	c := &call{fn: fn, err: make(chan error, 1), background: background}
	select {
	case s.calls <- c:
	case <-s.closing:
		return errClosing
	}
	return <-c.err
}

type call struct {
	fn         func(tx *bolt.Tx) error
	err        chan error
	background bool
}

// maxGroup bounds the calls that share one commit.
const maxGroup = 4096

// groupLinger is how long a commit waits for more calls while registers
// post concurrently; a fraction of the commit's own fsyncs.
const groupLinger = 500 * time.Microsecond

// backgroundLinger is how long a group of background calls only waits for
// more before it commits. A drain of the outbox records an answer per
// receipt, over a thousand a second at 50 ms; committed as they came, the
// commits ran back to back (130 to 600 a second in bench/rush), so that
// every receipt a register posted found a commit's fsyncs in progress and
// waited for them before its own. Gathered for 25 ms, the records take 40
// commits a second at most, the disk is idle most of the time, and a
// register's receipt that arrives meanwhile is committed at once, taking
// the records gathered so far with it. The push holds at most twice its
// window of receipts whose answer is not recorded yet (unrecordedMax), 128
// by default: 25 ms of a 1,100-a-second drain is 28.
var backgroundLinger = 25 * time.Millisecond // a test sets it longer

// onBackgroundWait, when set (by a test), is called as a group of
// background calls begins to wait.
var onBackgroundWait func()

// gather adds the calls that arrive to group for up to d, until it is
// full. For a group of background calls (forBackground), a register's
// call ends the wait, and so does the store closing.
func (s *Store) gather(group []*call, linger *time.Timer, d time.Duration, forBackground bool) []*call {
	var closing <-chan struct{} // nil: a register's group waits out d
	if forBackground {
		closing = s.closing
	}
	linger.Reset(d)
wait:
	for len(group) < maxGroup {
		select {
		case c := <-s.calls:
			group = append(group, c)
			if forBackground && !c.background {
				break wait
			}
		case <-linger.C:
			break wait
		case <-closing:
			break wait
		}
	}
	if !linger.Stop() {
		select {
		case <-linger.C:
		default:
		}
	}
	return group
}

func background(group []*call) bool { return countBackground(group) == len(group) }

func countBackground(group []*call) (n int) {
	for _, c := range group {
		if c.background {
			n++
		}
	}
	return n
}

// committer is the group commit: it takes every call waiting when the
// previous commit ends and commits them together. A lone register never
// waits on a timer; under load the group grows with the queue. A call that
// fails rolls the group back, and each call then runs alone; a commit that
// fails at the disk fails every call in it (running each alone would only
// fail each again).
func (s *Store) committer() {
	defer close(s.committed)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	last := 0 // calls in the previous commit
	for {
		var group []*call
		select {
		case c := <-s.calls:
			group = append(group, c)
		case <-s.closing:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case c := <-s.calls:
				group = append(group, c)
			default:
				break more
			}
		}
		if background(group) {
			if onBackgroundWait != nil {
				onBackgroundWait()
			}
			group = s.gather(group, linger, backgroundLinger, true)
		} else if last > 1 {
			// While several registers post at once (the last commit was
			// shared), wait a moment for the ones still on their way:
			// registers that connect one after another otherwise get a
			// commit each. A lone register never waits.
			group = s.gather(group, linger, groupLinger, false)
		}
		last = len(group) - countBackground(group)
		err := s.update(func(tx *bolt.Tx) error {
			for _, c := range group {
				if err := c.fn(tx); err != nil {
					return err
				}
			}
			return nil
		})
		for _, c := range group {
			if err != nil && len(group) > 1 && shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
				c.err <- s.update(c.fn)
			} else {
				c.err <- err
			}
		}
	}
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	return storeErr(s.guard(func() error { return s.db.View(fn) }))
}

// storeErr turns bbolt's own failures into the project's kinds.
func storeErr(err error) error {
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("%w: %w", shopbridge.Errorf(shopbridge.EUNAVAILABLE, "store", "the store is closed"), err)
	case errors.Is(err, berrors.ErrDatabaseReadOnly):
		return fmt.Errorf("%w: %w", shopbridge.Errorf(shopbridge.EUNAVAILABLE, "store", "the store is open read-only"), err)
	}
	return err
}

// WriteTo writes a consistent snapshot of the whole store to w while readers
// and writers go on.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupSize is the size WriteTo will write.
func (s *Store) BackupSize() (n int64) {
	_ = s.view(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Check runs bbolt's consistency check over the whole store and checks
// that the counts kept in meta match what the buckets hold.
func (s *Store) Check() error {
	// bbolt's check runs in a goroutine of its own, where a damaged page's
	// panic or fault cannot be recovered: the page check goes first.
	if _, err := s.checkLive(); err != nil {
		if s.Damaged() {
			return &DamageError{Path: s.path, What: s.Health().Error}
		}
		return &DamageError{Path: s.path, What: err.Error()}
	}
	return s.view(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if tx.Bucket(bucketMeta) != nil && schemaOf(tx.Bucket(bucketMeta)) >= 3 {
			for _, c := range storedCounts {
				if got, want := getInt(tx.Bucket(bucketMeta), c.key), tx.Bucket(c.bucket).Stats().KeyN; got != int64(want) {
					errs = append(errs, fmt.Errorf("count %s is %d, but bucket %s holds %d", c.key, got, c.bucket, want))
				}
			}
		}
		return errors.Join(errs...)
	})
}

// CheckFile opens the store file at path read-only, checks its consistency
// and that it is a shopbridge store this build can read.
func CheckFile(path string) error {
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Check()
}

// System returns the upstream's system string from its last successful hello.
func (s *Store) System() string {
	s.metaMu.RLock()
	defer s.metaMu.RUnlock()
	return s.system
}

// SetSystem stores the upstream's system string.
func (s *Store) SetSystem(system string) error {
	if s.System() == system {
		return nil
	}
	err := s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySystem, []byte(system)) })
	if err == nil {
		s.metaMu.Lock()
		s.system = system
		s.metaMu.Unlock()
	}
	return err
}

// SyncedAt is the time of the last successful pull; zero before any.
func (s *Store) SyncedAt() time.Time {
	s.metaMu.RLock()
	defer s.metaMu.RUnlock()
	return s.syncedAt
}

func putSyncedAt(tx *bolt.Tx, t time.Time) error {
	return tx.Bucket(bucketMeta).Put(keySyncedAt, []byte(t.UTC().Format(time.RFC3339Nano)))
}

// Stats are the store's counts for status pages and metrics.
type Stats struct {
	Bills        int    `json:"bills"`
	OpenBills    int    `json:"open_bills"`
	Receipts     int    `json:"receipts"`
	Outbox       int    `json:"outbox"`
	Parked       int    `json:"parked"`
	JournalBytes int64  `json:"journal_bytes"`
	Journal      int    `json:"journal_entries"`
	Commits      uint64 `json:"commits"`
	FileBytes    int64  `json:"file_bytes"`
}

// Stats counts what the store holds, from counts kept in meta.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.view(func(tx *bolt.Tx) error { st = statsTx(tx); return nil })
	st.Commits = s.Commits()
	return st, err
}

// statsTx reads the counts kept in meta, and the file's size, in tx.
func statsTx(tx *bolt.Tx) (st Stats) {
	st = countsOf(tx)
	meta := tx.Bucket(bucketMeta)
	st.Journal = int(getInt(meta, keyJournalEntries))
	st.JournalBytes = getInt(meta, keyJournalBytes)
	return st
}

// OutboxLen counts receipts waiting for the upstream, cheaply enough for
// every metrics scrape.
func (s *Store) OutboxLen() (n int) {
	_ = s.view(func(tx *bolt.Tx) error { n = int(getInt(tx.Bucket(bucketMeta), keyOutbox)); return nil })
	return n
}
