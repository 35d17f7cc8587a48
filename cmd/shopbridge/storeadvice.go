package main

import "github.com/shopbridge/shopbridge/storage"

// storeAdvice says what an owner does about a degraded store, by reason:
// free space helps a full disk only.
func storeAdvice(reason string) string {
	switch reason {
	case storage.FaultDiskFull:
		return "Free disk space: the store recovers by itself"
	case storage.FaultReadOnly:
		return "The file system holding the store went read-only (usually after a disk error): check the disk, repair the file system (fsck) and restart the PC; the store recovers by itself once it can write"
	case storage.FaultIO:
		return "The disk failed a write: check it (dmesg, SMART), it may be failing; the store tries again by itself"
	case storage.FaultDamaged:
		return "The store's file is damaged: stop shopbridge and restore the newest backup with `shopbridge restore FILE` (docs/recovery.md)"
	case storage.FaultReadFault:
		return "The disk failed to read the store: check the disk, then restart shopbridge (it checks the store at start) or restore the newest backup with `shopbridge restore FILE` (docs/recovery.md)"
	}
	return "See the daemon's log; the store tries again by itself"
}
