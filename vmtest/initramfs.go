package vmtest

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Initramfs is the guest's root file system, written as a newc cpio
// archive (the format the kernel unpacks).
type Initramfs struct {
	entries map[string]cpioEntry
}

type cpioEntry struct {
	mode uint32 // file type and permissions
	data []byte
	file string // host file to copy instead of data
	rdev [2]uint32
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

// NewInitramfs returns an archive with the directories and device node
// every guest needs.
func NewInitramfs() *Initramfs {
	fs := &Initramfs{entries: map[string]cpioEntry{}}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "data"} {
		fs.entries[d] = cpioEntry{mode: modeDir | 0o755}
	}
	fs.entries["dev/console"] = cpioEntry{mode: modeChar | 0o600, rdev: [2]uint32{5, 1}}
	return fs
}

// AddFile copies the host file src to name (a path without a leading /).
func (fs *Initramfs) AddFile(name, src string, perm os.FileMode) {
	fs.entries[strings.TrimPrefix(name, "/")] = cpioEntry{mode: modeFile | uint32(perm), file: src}
}

// AddData adds a file with the given contents.
func (fs *Initramfs) AddData(name string, data []byte, perm os.FileMode) {
	fs.entries[strings.TrimPrefix(name, "/")] = cpioEntry{mode: modeFile | uint32(perm), data: data}
}

// WriteFile writes the archive to path.
func (fs *Initramfs) WriteFile(dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fs.write(w); err != nil {
		f.Close()
		return fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (fs *Initramfs) write(w io.Writer) error {
	names := make([]string, 0, len(fs.entries))
	for n := range fs.entries {
		names = append(names, n)
	}
	// Parents sort before their children.
	sort.Strings(names)
	for i, name := range names {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if e, ok := fs.entries[dir]; !ok || e.mode&modeDir == 0 {
				return fmt.Errorf("%s: its directory %s is not in the archive", name, dir)
			}
		}
		e := fs.entries[name]
		data := e.data
		if e.file != "" {
			b, err := os.ReadFile(e.file)
			if err != nil {
				return err
			}
			data = b
		}
		if err := writeCpio(w, uint32(i+1), name, e.mode, data, e.rdev); err != nil {
			return err
		}
	}
	return writeCpio(w, 0, "TRAILER!!!", 0, nil, [2]uint32{})
}

// writeCpio writes one newc entry: a 110-byte header of hex fields, the
// name with its NUL, the data, each padded to 4 bytes.
func writeCpio(w io.Writer, ino uint32, name string, mode uint32, data []byte, rdev [2]uint32) error {
	nlink := 1
	if mode&modeDir != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name)+1, 0)
	if _, err := io.WriteString(w, hdr+name+"\x00"+pad4(len(hdr)+len(name)+1)); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := io.WriteString(w, pad4(len(data)))
	return err
}

func pad4(n int) string { return strings.Repeat("\x00", (4-n%4)%4) }

// staticELF reports whether the file is an ELF executable without a
// program interpreter, i.e. one that runs in an initramfs with no libc.
func staticELF(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", file)
		}
	}
	return nil
}
