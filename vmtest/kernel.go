package vmtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Kernel is a Debian kernel unpacked from its linux-image package.
type Kernel struct {
	Release string // e.g. 6.1.0-57-amd64
	Dir     string // the unpacked package
	Vmlinuz string // boot/vmlinuz-RELEASE
}

// ModulesDir is lib/modules/RELEASE of the package.
func (k *Kernel) ModulesDir() string { return filepath.Join(k.Dir, "lib", "modules", k.Release) }

// OpenKernel finds the kernel in dir, an unpacked linux-image package
// (dpkg-deb -x).
func OpenKernel(dir string) (*Kernel, error) {
	m, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(m) != 1 {
		return nil, fmt.Errorf("%s: want one boot/vmlinuz-* (an unpacked Debian linux-image package), found %d", dir, len(m))
	}
	k := &Kernel{Dir: dir, Vmlinuz: m[0], Release: strings.TrimPrefix(filepath.Base(m[0]), "vmlinuz-")}
	if _, err := os.Stat(k.ModulesDir()); err != nil {
		return nil, fmt.Errorf("%s: no modules for kernel %s: %w", dir, k.Release, err)
	}
	return k, nil
}

var dependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[0-9]\S*)\s*$`)

// FetchDebianKernel unpacks the kernel package that linux-image-amd64
// depends on (per this machine's apt sources) into cache/PACKAGE, unless
// it is there already, and returns that directory. It needs apt-get and
// dpkg-deb.
func FetchDebianKernel(cache string) (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %v: %s", err, bytes.TrimSpace(out))
	}
	m := dependsRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64 names no linux-image-N package:\n%s", out)
	}
	pkg := string(m[1])
	dir := filepath.Join(cache, pkg)
	if _, err := OpenKernel(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, pkg+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	get := exec.Command("apt-get", "download", "-q", pkg)
	get.Dir = tmp
	if out, err := get.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %v: %s", pkg, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, bytes.TrimSpace(out))
	}
	if _, err := OpenKernel(root); err != nil {
		return "", err
	}
	os.RemoveAll(dir) // a partial earlier attempt
	if err := os.Rename(root, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Vmlinux returns the uncompressed kernel (an ELF file QEMU boots
// directly through its PVH entry point), made once from vmlinuz and kept
// next to it. Without KVM, decompressing a bzImage in the guest takes
// longer than the rest of the boot.
func (k *Kernel) Vmlinux() (string, error) {
	dst := filepath.Join(k.Dir, "boot", "vmlinux-"+k.Release)
	if f, err := elf.Open(dst); err == nil {
		f.Close()
		return dst, nil
	}
	img, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		return "", err
	}
	var raw []byte
	switch {
	case bytes.Contains(img, []byte("\xfd7zXZ\x00")):
		i := bytes.Index(img, []byte("\xfd7zXZ\x00"))
		cmd := exec.Command("xz", "-dc", "--single-stream")
		cmd.Stdin = bytes.NewReader(img[i:])
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if raw, err = cmd.Output(); err != nil {
			return "", fmt.Errorf("xz -d the kernel in %s: %v: %s", k.Vmlinuz, err, bytes.TrimSpace(stderr.Bytes()))
		}
	case bytes.Contains(img, []byte("\x1f\x8b\x08\x00")):
		zr, err := gzip.NewReader(bytes.NewReader(img[bytes.Index(img, []byte("\x1f\x8b\x08\x00")):]))
		if err != nil {
			return "", err
		}
		zr.Multistream(false)
		if raw, err = io.ReadAll(zr); err != nil {
			return "", fmt.Errorf("gunzip the kernel in %s: %w", k.Vmlinuz, err)
		}
	default:
		return "", fmt.Errorf("%s: the kernel inside is neither xz nor gzip compressed", k.Vmlinuz)
	}
	if !bytes.HasPrefix(raw, []byte("\x7fELF")) {
		return "", fmt.Errorf("%s: the decompressed kernel is not an ELF file", k.Vmlinuz)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

// Modules returns the module files that load the named modules, each
// after the modules it depends on (the depends= of its .modinfo, as
// modprobe would resolve them with modules.dep, which the package does not
// ship). Modules built into the kernel are left out.
func (k *Kernel) Modules(names ...string) ([]string, error) {
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[modName(l)] = true
		}
	}
	files := map[string]string{}
	err := filepath.WalkDir(filepath.Join(k.ModulesDir(), "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			files[modName(p)] = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = modName(name)
		switch {
		case state[name] == 2 || builtin[name]:
			return nil
		case state[name] == 1:
			return fmt.Errorf("module %s: dependency cycle", name)
		}
		p, ok := files[name]
		if !ok {
			return fmt.Errorf("module %s (needed by %s) is not in %s", name, from, k.ModulesDir())
		}
		state[name] = 1
		deps, err := modDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, p)
		return nil
	}
	for _, n := range names {
		if err := visit(n, "the guest"); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// modName is a module's name from its file name, with - and _ the same as
// the kernel treats them.
func modName(p string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(p), ".ko"), "-", "_")
}

// modDepends reads depends= from a module's .modinfo section.
func modDepends(file string) ([]string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", file)
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
