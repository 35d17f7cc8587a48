package shopbridge

import "time"

// BackupStatus is the scheduled backups' part of the daemon's status.
type BackupStatus struct {
	// Dir is where backups go; "none" when scheduled backups are off.
	Dir   string `json:"dir"`
	Every string `json:"every"` // backup-every, as a Go duration
	// LastOKAt, LastOKFile and LastOKBytes name the newest good backup
	// (made and checked by this daemon, or found in Dir at start).
	LastOKAt    *time.Time `json:"last_ok_at"`
	LastOKFile  string     `json:"last_ok_file,omitempty"`
	LastOKBytes int64      `json:"last_ok_bytes,omitempty"`
	// LastError is the last attempt's failure; gone once one succeeds.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	NextAt      *time.Time `json:"next_at"`
	// Stale: the last good backup is older than twice Every (or there is
	// none and an attempt failed).
	Stale bool `json:"stale"`
}
