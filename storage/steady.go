package storage

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// keySteadyClock holds the daemon's steady clock (unix ns) as last saved,
// so it goes on from there after a restart (see daemon/steady.go).
var keySteadyClock = []byte("steady_clock")

// SteadyClock is the steady clock as last saved; ok is false before any.
func (s *Store) SteadyClock() (t time.Time, ok bool) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySteadyClock); len(v) == 8 {
			n, ok = getInt(tx.Bucket(bucketMeta), keySteadyClock), true
		}
		return nil
	})
	if err != nil || !ok {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// SetSteadyClock saves the steady clock.
func (s *Store) SetSteadyClock(t time.Time) error {
	return s.update(func(tx *bolt.Tx) error { return putInt(tx.Bucket(bucketMeta), keySteadyClock, t.UnixNano()) })
}
