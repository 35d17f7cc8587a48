package daemon

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// journalWriter takes journal entries off the request path: Record only
// appends to a queue (dropping, and counting, when it is full, so a
// terminal never waits), and one goroutine takes the whole queue at a time
// and writes it in batches, one commit each, keeps the terminals seen and
// prunes by age and size. The queue is a slice under a mutex, not a
// channel: the writer wakes once a batch, not once an entry, which under
// load cost terminals more than the entries themselves.
type journalWriter struct {
	store    *storage.Store
	logger   *slog.Logger
	maxAge   time.Duration
	maxBytes int64
	steady   *steadyClock // nil: wall clock (no daemon around the writer)

	qmu     sync.Mutex
	queue   []shopbridge.JournalEntry // recorded, not yet taken by the writer
	wake    chan struct{}             // the queue became non-empty, or holds a batch
	dropped atomic.Uint64
	written atomic.Uint64
	lagNS   atomic.Int64 // age of the oldest entry in the last batch when written

	mu        sync.Mutex
	terminals map[string]storage.Terminal
	dirty     map[string]bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	journalQueue = 16384
	journalBatch = 4096
)

func newJournalWriter(st *storage.Store, logger *slog.Logger, maxAge time.Duration, maxBytes int64) *journalWriter {
	j := &journalWriter{store: st, logger: logger.With("part", "journal"), maxAge: maxAge, maxBytes: maxBytes,
		queue: make([]shopbridge.JournalEntry, 0, journalBatch), wake: make(chan struct{}, 1),
		terminals: map[string]storage.Terminal{}, dirty: map[string]bool{}}
	if ts, err := st.Terminals(); err == nil {
		for _, t := range ts {
			j.terminals[terminalKey(t)] = t
		}
	}
	return j
}

func terminalKey(t storage.Terminal) string {
	if t.Device != "" {
		return t.Device
	}
	return t.Address
}

// Record queues an entry; it never blocks.
func (j *journalWriter) Record(e shopbridge.JournalEntry) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if j.steady != nil && e.Steady.IsZero() {
		e.Steady = j.steady.Now()
	}
	j.qmu.Lock()
	n := len(j.queue)
	if n >= journalQueue {
		j.qmu.Unlock()
		j.dropped.Add(1)
		return
	}
	j.queue = append(j.queue, e)
	j.qmu.Unlock()
	if n == 0 || n+1 == journalBatch {
		select {
		case j.wake <- struct{}{}:
		default:
		}
	}
}

// queued is how many entries wait for the writer.
func (j *journalWriter) queued() int {
	j.qmu.Lock()
	defer j.qmu.Unlock()
	return len(j.queue)
}

// take returns the queue and starts a new one in spare's array.
func (j *journalWriter) take(spare []shopbridge.JournalEntry) []shopbridge.JournalEntry {
	j.qmu.Lock()
	defer j.qmu.Unlock()
	q := j.queue
	j.queue = spare[:0]
	return q
}

func (j *journalWriter) open() {
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	j.wg.Add(1)
	go j.loop(ctx)
}

// close writes what is queued and stops.
func (j *journalWriter) close() {
	if j.cancel == nil {
		return
	}
	j.cancel()
	j.wg.Wait()
}

// journalGather is how long the writer collects entries before a commit:
// a commit (two fdatasyncs) per 100 ms at most instead of one per request
// burst, which under load cost terminals more than the entries themselves.
const journalGather = 100 * time.Millisecond

func (j *journalWriter) loop(ctx context.Context) {
	defer j.wg.Done()
	prune := time.NewTimer(10 * time.Second)
	defer prune.Stop()
	flush := time.NewTimer(10 * time.Second)
	defer flush.Stop()
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	gathering := false
	spare := make([]shopbridge.JournalEntry, 0, journalBatch)
	// drain writes what is queued, a batch a commit, and keeps the array.
	drain := func() {
		q := j.take(spare)
		for b := q; len(b) > 0; b = b[min(len(b), journalBatch):] {
			j.write(b[:min(len(b), journalBatch)])
		}
		clear(q) // the entries hold bodies
		spare = q[:0]
	}
	for {
		select {
		case <-j.wake:
			if j.queued() >= journalBatch {
				drain()
			} else if !gathering {
				gathering = true
				gather.Reset(journalGather)
			}
		case <-gather.C:
			gathering = false
			drain()
		case <-prune.C:
			if j.steady != nil && !j.store.Degraded() {
				_ = j.steady.save(j.store)
			}
			j.prune()
			prune.Reset(time.Minute)
		case <-flush.C:
			j.flushTerminals()
			flush.Reset(10 * time.Second)
		case <-ctx.Done():
			drain()
			j.flushTerminals()
			if j.steady != nil && !j.store.Degraded() {
				_ = j.steady.save(j.store)
			}
			return
		}
	}
}

func (j *journalWriter) write(batch []shopbridge.JournalEntry) {
	if len(batch) == 0 {
		return
	}
	j.seen(batch)
	// While the store cannot write (a full disk), the journal gives way:
	// its batches would only fail, and take pages a receipt may still
	// find. The entries are counted as dropped; the store has logged why.
	if j.store.Degraded() {
		j.dropped.Add(uint64(len(batch)))
		return
	}
	if err := j.store.AppendJournal(batch); err != nil {
		j.dropped.Add(uint64(len(batch)))
		if shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
			j.logger.Error("journal write failed", "entries", len(batch), "err", err)
		}
		return
	}
	j.written.Add(uint64(len(batch)))
	j.lagNS.Store(int64(time.Since(batch[0].Time)))
}

// seen keeps the registers of a batch, written or not.
func (j *journalWriter) seen(batch []shopbridge.JournalEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range batch {
		if e.Client == "" || e.Client == "upstream" {
			continue
		}
		t := storage.Terminal{Device: e.Device, Address: e.Client, LastSeen: e.Time, LastKind: e.Kind}
		k := terminalKey(t)
		if old, ok := j.terminals[k]; ok && !old.LastSeen.Before(t.LastSeen) {
			continue
		}
		j.terminals[k] = t
		j.dirty[k] = true
	}
}

func (j *journalWriter) flushTerminals() {
	j.mu.Lock()
	var ts []storage.Terminal
	for k := range j.dirty {
		ts = append(ts, j.terminals[k])
	}
	clear(j.dirty)
	j.mu.Unlock()
	if len(ts) == 0 || j.store.Degraded() {
		j.restoreDirty(ts)
		return
	}
	if err := j.store.PutTerminals(ts); err != nil {
		j.restoreDirty(ts)
		if shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
			j.logger.Error("saving terminals failed", "err", err)
		}
	}
}

// restoreDirty marks terminals not saved to be saved at the next flush.
func (j *journalWriter) restoreDirty(ts []storage.Terminal) {
	j.mu.Lock()
	for _, t := range ts {
		j.dirty[terminalKey(t)] = true
	}
	j.mu.Unlock()
}

func (j *journalWriter) prune() {
	for {
		now := time.Now()
		if j.steady != nil {
			now = j.steady.Now()
		}
		n, err := j.store.PruneJournal(now, j.maxAge, j.maxBytes, 10000)
		if err != nil {
			if shopbridge.ErrorKind(err) != shopbridge.EUNAVAILABLE {
				j.logger.Error("journal prune failed", "err", err)
			}
			return
		}
		if n > 0 {
			j.logger.Debug("journal pruned", "entries", n)
		}
		if n < 10000 {
			return
		}
	}
}

// Terminals returns the registers seen, most recent first.
func (j *journalWriter) Terminals() []storage.Terminal {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]storage.Terminal, 0, len(j.terminals))
	for _, t := range j.terminals {
		out = append(out, t)
	}
	for i := 1; i < len(out); i++ {
		for k := i; k > 0 && out[k].LastSeen.After(out[k-1].LastSeen); k-- {
			out[k], out[k-1] = out[k-1], out[k]
		}
	}
	return out
}
