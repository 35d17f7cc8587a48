package vmtest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/internal/testbin"
)

// relayArg makes the test binary a TCP relay between its stdin/stdout and
// an address: QEMU's guestfwd runs it for each connection the guest opens
// to the upstream, so the guest reaches the simulator on the host's
// loopback and nothing else.
const relayArg = "vmtest-relay"

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == relayArg {
		os.Exit(relay(os.Args[2]))
	}
	os.Exit(m.Run())
}

// relay copies between stdin/stdout (the guest's connection) and addr. It
// prints nothing: stderr is the guest's connection too.
func relay(addr string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 1
	}
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(os.Stdout, c)
	return 0
}

// strict is CI: a missing tool or device fails the test instead of
// skipping it.
var strict = os.Getenv("SHOPBRIDGE_STRICT") == "1"

// need skips the test with the reason when ok is false, or fails it in
// strict mode.
func need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if strict {
		t.Fatalf("SHOPBRIDGE_STRICT=1 and this test cannot run: %s", msg)
	}
	t.Skipf("skipped: %s", msg)
}

// defaultAccel is KVM where /dev/kvm can run Debian's kernel, and CPU
// emulation (TCG) elsewhere, with why: the same guest and the same checks,
// only slower.
func defaultAccel() (accel, why string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg", fmt.Sprintf("no usable /dev/kvm (%v): emulating the CPU (TCG)", err)
	}
	f.Close()
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		// PVM (nested virtualization in software) cannot run an
		// unmodified kernel: it stops on instructions it does not
		// emulate (cmpxchg16b, xrstor) and takes minutes to boot.
		return "tcg", "/dev/kvm is PVM (kvm_pvm), which runs an unmodified Debian kernel far slower than emulation: using TCG"
	}
	return "kvm", ""
}

// rig is what a guest needs, found or built once per test.
type rig struct {
	accel, bootMode string
	qemu            string
	kernel          *Kernel
	vmlinux         string
	initrd          string
	shopbridge      string // the host build, for the simulator
}

// setup finds QEMU, the kernel and the tools, and builds the initramfs;
// it skips (or fails, in strict mode) with what is missing.
func setup(t *testing.T) *rig {
	if testing.Short() {
		t.Skip("skipped in -short mode: boots a virtual machine many times")
	}
	r := &rig{}
	r.accel = os.Getenv("SHOPBRIDGE_VM_ACCEL")
	switch r.accel {
	case "":
		var why string
		r.accel, why = defaultAccel()
		if why != "" {
			t.Log(why)
		}
	case "kvm", "tcg":
	default:
		t.Fatalf("SHOPBRIDGE_VM_ACCEL=%q: want kvm or tcg", r.accel)
	}
	r.bootMode = os.Getenv("SHOPBRIDGE_VM_BOOT")
	switch r.bootMode {
	case "":
		r.bootMode = map[string]string{"kvm": "cold", "tcg": "resume"}[r.accel]
	case "cold", "resume":
	default:
		t.Fatalf("SHOPBRIDGE_VM_BOOT=%q: want cold or resume", r.bootMode)
	}
	var err error
	r.qemu, err = exec.LookPath("qemu-system-x86_64")
	need(t, err == nil, "needs qemu-system-x86_64 (apt-get install qemu-system-x86)")
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "debugfs"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, "needs %s (apt-get install e2fsprogs)", tool)
	}
	busybox := "/bin/busybox"
	need(t, staticELF(busybox) == nil, "needs a static /bin/busybox for the guest (apt-get install busybox-static)")

	kdir := os.Getenv("SHOPBRIDGE_VM_KERNEL")
	if kdir == "" {
		cache, err := os.UserCacheDir()
		need(t, err == nil, "no cache directory for the guest kernel (%v); set SHOPBRIDGE_VM_KERNEL", err)
		start := time.Now()
		kdir, err = FetchDebianKernel(filepath.Join(cache, "shopbridge-vmtest"))
		need(t, err == nil, "no Debian kernel for the guest: %v; set SHOPBRIDGE_VM_KERNEL to an unpacked linux-image package", err)
		if d := time.Since(start); d > time.Second {
			t.Logf("fetched and unpacked the Debian kernel into %s in %v", kdir, d.Round(time.Second))
		}
	}
	r.kernel, err = OpenKernel(kdir)
	if err != nil {
		t.Fatal(err)
	}
	r.vmlinux, err = r.kernel.Vmlinux()
	need(t, err == nil, "cannot uncompress the guest kernel: %v (apt-get install xz-utils)", err)

	bin, cleanup, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	r.shopbridge = bin
	r.initrd = filepath.Join(t.TempDir(), "initrd.cpio")
	if err := BuildInitramfs(r.initrd, r.kernel, busybox, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("guest: Debian kernel %s, %s, boot %s", r.kernel.Release, r.accel, r.bootMode)
	return r
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pinningClient is the host's client to the guest. Its HTTPS trusts the
// certificate it meets first, as an owner does who accepts the browser's
// warning once, and refuses any other after: the daemon's self-made
// certificate must survive every power cut and boot unchanged.
func pinningClient() *http.Client {
	var mu sync.Mutex
	var pinned []byte
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		InsecureSkipVerify: true, // self-signed; VerifyConnection pins it
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the guest sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			mu.Lock()
			defer mu.Unlock()
			if pinned == nil {
				pinned = sum[:]
			} else if !bytes.Equal(pinned, sum[:]) {
				return fmt.Errorf("the guest's certificate changed: sha256 %x, was %x", sum, pinned)
			}
			return nil
		},
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// sim is the upstream simulator, a separate process on the host's loopback.
type sim struct {
	cmd     *exec.Cmd
	apiPort int
	ctl     *crmsim.Control
}

var simRE = regexp.MustCompile(`^crmsim api=http://127\.0\.0\.1:(\d+) control=(\S+)`)

func startSim(t testing.TB, binary string) *sim {
	t.Helper()
	cmd := exec.Command(binary, "crmsim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { cmd.Process.Signal(syscall.SIGKILL); cmd.Wait() }) }
	t.Cleanup(kill)
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := simRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
	}()
	select {
	case m := <-found:
		port, _ := strconv.Atoi(m[1])
		return &sim{cmd: cmd, apiPort: port, ctl: &crmsim.Control{URL: m[2]}}
	case <-time.After(30 * time.Second):
		t.Fatal("crmsim did not start")
	}
	return nil
}
