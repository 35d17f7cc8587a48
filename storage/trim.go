package storage

import "time"

// The store's pages in the daemon's memory. bbolt reads the store through
// a memory map, so every page a read or a commit touches stays in the
// daemon's resident set (RssFile) until the kernel needs the memory: a
// drain of 10,000 receipts, a mirror of the catalogue or a day's lists
// over a gigabyte store left 45 MiB of it mapped (bench/rush), more than
// the daemon's own memory. The pages are the page cache's, and stay there
// (a read of one again costs a minor fault, not the disk), but mapped
// pages are the last the kernel reclaims, and a shop's PC has other
// programs to run. Every trimEvery the mapping is given back whole; what
// the registers use again is mapped again at once.
const trimEvery = 2 * time.Second

// trimLoop trims the mapping until the store closes.
func (s *Store) trimLoop() {
	defer s.probes.Done()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.trimMapped()
		}
	}
}
