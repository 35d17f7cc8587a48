package vmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Machine is how a guest is started; every boot of one test uses the same,
// so that a snapshot of one boot resumes under another.
type Machine struct {
	QEMU     string // qemu-system-x86_64
	Accel    string // "kvm" or "tcg"
	Kernel   string // vmlinux
	Initrd   string
	Append   string // kernel command line
	MemoryMB int
	Disk     string // the -drive file= value, e.g. nbd+unix:///?socket=PATH
	HostPort int    // 127.0.0.1:HostPort on the host reaches the guest's :8480
	// 127.0.0.1:HTTPSPort reaches the guest's :8443, the console over
	// HTTPS: the host is another PC to the guest (QEMU's user network
	// comes from 10.0.2.2), so the daemon redirects /admin/ on :8480 there.
	HTTPSPort int
	GuestFwd  string // "" or a guestfwd= value of QEMU's user network
	Dir       string // where sockets live
}

// VM is a running QEMU.
type VM struct {
	cmd     *exec.Cmd
	console string
	dir     string
	done    chan struct{}
	waitErr error
	stderr  bytes.Buffer
	ctl     net.Conn
}

// Boot starts QEMU with its serial console written to console. A non-empty
// incoming resumes the snapshot file written by VM.Snapshot; the guest is
// then paused until Cont.
func (m Machine) Boot(console, incoming string) (*VM, error) {
	ctl, qmp := filepath.Join(m.Dir, "ctl.sock"), filepath.Join(m.Dir, "qmp.sock")
	os.Remove(ctl)
	os.Remove(qmp)
	netdev := fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:8480,hostfwd=tcp:127.0.0.1:%d-:8443", m.HostPort, m.HTTPSPort)
	if m.GuestFwd != "" {
		netdev += ",guestfwd=" + m.GuestFwd
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-machine", "pc,accel=" + m.Accel,
		"-m", fmt.Sprint(m.MemoryMB), "-smp", "1", "-display", "none", "-no-reboot",
		"-kernel", m.Kernel, "-initrd", m.Initrd, "-append", m.Append,
		// ttyS0: the console; ttyS1: the test's control line to init.
		"-chardev", "file,id=con,path=" + console, "-serial", "chardev:con",
		"-chardev", "socket,id=ctl,path=" + ctl + ",server=on,wait=off", "-serial", "chardev:ctl",
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
		// cache=writeback: the guest sees a disk with a volatile write
		// cache, so it sends flushes, and QEMU passes each one to the disk
		// (never cache=unsafe, which drops them).
		"-drive", "id=disk0,if=none,format=raw,cache=writeback,file=" + m.Disk,
		"-device", "virtio-blk-pci,drive=disk0",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
	}
	if m.Accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	if incoming != "" {
		args = append(args, "-incoming", "exec:cat "+incoming)
	}
	v := &VM{console: console, dir: m.Dir, done: make(chan struct{})}
	v.cmd = exec.Command(m.QEMU, args...)
	v.cmd.Stderr = &v.stderr
	dieWithParent(v.cmd)
	if err := v.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		v.waitErr = v.cmd.Wait()
		close(v.done)
	}()
	return v, nil
}

// Exited is closed when QEMU has exited.
func (v *VM) Exited() <-chan struct{} { return v.done }

// ExitStatus describes how QEMU ended, with what it printed.
func (v *VM) ExitStatus() string {
	select {
	case <-v.done:
		return fmt.Sprintf("%v; stderr: %s", v.waitErr, strings.TrimSpace(v.stderr.String()))
	default:
		return "running"
	}
}

// Kill is the power cut: SIGKILL, and wait until the process is gone.
func (v *VM) Kill() {
	v.cmd.Process.Signal(syscall.SIGKILL)
	<-v.done
	if v.ctl != nil {
		v.ctl.Close()
	}
}

// Console returns what the guest printed on its console so far.
func (v *VM) Console() string {
	b, _ := os.ReadFile(v.console)
	return string(b)
}

// WaitConsole waits until the console matches re and returns the match.
func (v *VM) WaitConsole(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(v.Console()); m != nil {
			return m, nil
		}
		select {
		case <-v.done:
			if m := re.FindStringSubmatch(v.Console()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("QEMU exited before the console showed %q: %s", re, v.ExitStatus())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the console did not show %q within %v", re, timeout)
		}
	}
}

// Send writes one line to the guest's second serial port.
func (v *VM) Send(line string) error {
	if v.ctl == nil {
		c, err := dialRetry(filepath.Join(v.dir, "ctl.sock"), v.done)
		if err != nil {
			return fmt.Errorf("control serial port: %w", err)
		}
		v.ctl = c
	}
	_, err := v.ctl.Write([]byte(line + "\n"))
	return err
}

// Snapshot pauses the guest and writes its state (memory and devices, not
// the disk) to file.
func (v *VM) Snapshot(file string) error {
	q, err := v.qmp()
	if err != nil {
		return err
	}
	defer q.close()
	if _, err := q.do("stop", nil); err != nil {
		return err
	}
	if _, err := q.do("migrate", map[string]any{"uri": "exec:cat > " + file}); err != nil {
		return err
	}
	for {
		r, err := q.do("query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		json.Unmarshal(r, &st)
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("snapshot: migration %s: %s", st.Status, st.ErrorDesc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cont waits until a resumed snapshot is loaded and lets the guest run.
func (v *VM) Cont() error {
	q, err := v.qmp()
	if err != nil {
		return err
	}
	defer q.close()
	for {
		r, err := q.do("query-status", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
		}
		json.Unmarshal(r, &st)
		if st.Status != "inmigrate" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = q.do("cont", nil)
	return err
}

// qmpConn is a connection to QEMU's machine protocol.
type qmpConn struct {
	c net.Conn
	r *bufio.Reader
}

func (v *VM) qmp() (*qmpConn, error) {
	c, err := dialRetry(filepath.Join(v.dir, "qmp.sock"), v.done)
	if err != nil {
		return nil, fmt.Errorf("QMP: %w", err)
	}
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	if _, err := q.r.ReadBytes('\n'); err != nil { // the greeting
		c.Close()
		return nil, fmt.Errorf("QMP greeting: %w", err)
	}
	if _, err := q.do("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpConn) close() { q.c.Close() }

// do runs a command and returns its "return" value; events are skipped.
func (q *qmpConn) do(cmd string, args map[string]any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	q.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("QMP %s: %w", cmd, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("QMP %s: %w", cmd, err)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("QMP %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

// dialRetry connects to a unix socket QEMU is about to create.
func dialRetry(path string, exited <-chan struct{}) (net.Conn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case <-exited:
			return nil, errors.New("QEMU has exited")
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, err
		}
	}
}
