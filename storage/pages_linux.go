package storage

import (
	"os"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// pageDropper gives the file pages that a long read of the store mapped back
// to the kernel once the read is done with them: a search through a large
// journal then does not leave the daemon's resident set holding the whole
// journal. The pages stay in the page cache; touching them again costs a
// minor fault. Only memory inside the store's mapping is ever advised, so a
// value that is not mapped (none in a read transaction) is left alone.
type pageDropper struct {
	lo, hi uintptr // the store's mapping, as far as the file goes
	ps     uintptr
}

func newPageDropper(db *bolt.DB, tx *bolt.Tx) pageDropper {
	info := db.Info()
	return pageDropper{lo: info.Data, hi: info.Data + uintptr(tx.Size()), ps: uintptr(os.Getpagesize())}
}

// drop advises the kernel that the pages under b are not needed.
func (d pageDropper) drop(b []byte) {
	if len(b) == 0 || d.lo == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	end := start + uintptr(len(b))
	if start < d.lo || end > d.hi {
		return
	}
	start &^= d.ps - 1
	end = (end + d.ps - 1) &^ (d.ps - 1)
	if end > d.hi {
		end = d.hi &^ (d.ps - 1)
	}
	if end <= start {
		return
	}
	unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_DONTNEED)
}

// trimMapped gives back to the kernel every page of the store the daemon
// has mapped in (pageDropper's drop, for the whole store). Inside a read
// transaction, so that bbolt cannot remap the file meanwhile: advised
// after a remap, the old range could be memory of the heap's.
func (s *Store) trimMapped() {
	_ = s.view(func(tx *bolt.Tx) error {
		info := s.db.Info()
		if info.Data == 0 || tx.Size() == 0 {
			return nil
		}
		unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
		return nil
	})
}
