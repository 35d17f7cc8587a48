package storage

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// InUse reports whether a process holds the store at path open for
// writing (bbolt's lock on the byte range -1..0), without reading the
// file. A missing file is not in use.
func InUse(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer f.Close()
	m1 := ^uint32(0)
	ol := &windows.Overlapped{Offset: m1, OffsetHigh: m1}
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	return false, windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{Offset: m1, OffsetHigh: m1})
}

func chownLike(path, ref string) error { return nil }
