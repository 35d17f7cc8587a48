//go:build !windows

package storage

import (
	"os"
	"syscall"
)

var (
	diskFullErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT}
	readOnlyErrnos = []syscall.Errno{syscall.EROFS}
	ioErrnos       = []syscall.Errno{syscall.EIO}
)

// syncDir makes a new entry in dir durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
