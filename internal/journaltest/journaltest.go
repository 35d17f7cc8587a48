// Package journaltest is the in-memory journal for tests of the parts that
// record to one (the HTTP layer, sync) without the daemon's journal writer
// and its store. internal/ because only the module's own tests use it.
package journaltest

import (
	"strings"
	"sync"

	"github.com/shopbridge/shopbridge"
)

// Journal keeps what is recorded, in order. The zero value is ready; it is
// safe for concurrent use.
type Journal struct {
	mu      sync.Mutex
	entries []shopbridge.JournalEntry
}

// Record keeps e (shopbridge.Journal).
func (j *Journal) Record(e shopbridge.JournalEntry) {
	j.mu.Lock()
	j.entries = append(j.entries, e)
	j.mu.Unlock()
}

// Entries returns a copy of what was recorded, oldest first.
func (j *Journal) Entries() []shopbridge.JournalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]shopbridge.JournalEntry(nil), j.entries...)
}

// Len is how many entries were recorded.
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.entries)
}

// Last returns the newest entry; ok is false while there is none.
func (j *Journal) Last() (e shopbridge.JournalEntry, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.entries) == 0 {
		return shopbridge.JournalEntry{}, false
	}
	return j.entries[len(j.entries)-1], true
}

// Has reports whether an entry of kind has a note containing substr.
func (j *Journal) Has(kind, substr string) bool {
	for _, e := range j.Entries() {
		if e.Kind == kind && strings.Contains(e.Note, substr) {
			return true
		}
	}
	return false
}
