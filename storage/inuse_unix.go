//go:build !windows

package storage

import (
	"errors"
	"os"
	"syscall"
)

// InUse reports whether a process holds the store at path open for
// writing (bbolt's exclusive lock on the file), without reading the file:
// it works on a damaged store too. A missing file is not in use.
func InUse(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// chownLike gives path the owner and group of ref (the store a restore
// replaces), so the service's own user can open it; it does nothing unless
// run as root.
func chownLike(path, ref string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(ref)
	if err != nil {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return os.Chown(path, int(st.Uid), int(st.Gid))
	}
	return nil
}
