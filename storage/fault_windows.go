package storage

import "syscall"

// Windows error codes (winerror.h): ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL,
// ERROR_WRITE_PROTECT, ERROR_CRC and ERROR_IO_DEVICE.
var (
	diskFullErrnos = []syscall.Errno{39, 112}
	readOnlyErrnos = []syscall.Errno{19}
	ioErrnos       = []syscall.Errno{23, 1117}
)

// syncDir: NTFS makes directory entries durable with the file's own flush.
func syncDir(dir string) {}
