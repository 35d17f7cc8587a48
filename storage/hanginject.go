//go:build hanginject && !windows

package storage

import (
	"os"
	"os/signal"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// HangInjection tells whether this is a test build that can hang on purpose.
const HangInjection = true

// injectHang, in a test build (go build -tags hanginject) only, makes
// SIGUSR2 block the store's commit loop forever inside a write transaction,
// the way a commit stuck on a dying disk would: receipts then get no
// answer while reads still work. packaging/test.sh's systemd guest test
// uses it to prove that the watchdog restarts a hung daemon. Release
// builds compile hangnever.go instead, with no such signal handler.
func (s *Store) injectHang() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR2)
	go func() {
		defer signal.Stop(sig)
		select {
		case <-sig:
		case <-s.closing:
			return
		}
		s.logger.Warn("hang injected (test build): the commit loop blocks forever")
		_ = s.batch(func(tx *bolt.Tx) error { select {} })
	}()
}
