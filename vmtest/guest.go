package vmtest

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Guest network: QEMU's user network gives the guest 10.0.2.15; the host
// is reachable only through the forwards the test sets up.
const (
	// GuestUpstreamAddr is where the guest finds the simulator, through a
	// guestfwd to the host.
	GuestUpstreamAddr = "10.0.2.100:8481"
	// AdminToken lets the test reach /admin/* through the host forward,
	// which the guest sees as a connection from 10.0.2.2, not loopback.
	AdminToken = "vmtest-admin"
)

// guestModules are what the guest loads before it is ready: virtio on PCI,
// the network card, ext4 and the crc32c that ext4 asks the crypto API for
// by name (no depends= names it). virtio_blk comes last, after the go line.
var guestModules = []string{"virtio_pci", "virtio_net", "crc32c_generic", "ext4", "virtio_blk"}

// initScript is PID 1 of the guest. Everything before "vmtest: ready"
// happens before the kernel has seen the disk (virtio_blk is not loaded),
// so a snapshot taken there resumes like a fresh boot as far as the disk
// is concerned. The test then sends one line on ttyS1: "go", the time, a seed
// for the kernel's random pool (a resumed snapshot would otherwise repeat
// it) and the upstream URL or "-".
const initScript = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in %s; do
	insmod /lib/modules/$m || echo "vmtest: insmod $m failed"
done
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
# ttyS1 stays open from here on: a serial port's last close shuts it down
# and the next open clears its FIFO, losing what the test had sent in
# between (a clock line that lost its first digits set the guest to 1970).
exec 3< /dev/ttyS1
stty raw -echo <&3
echo "vmtest: ready"
read -r tag now seed upstream <&3
if [ "$tag" != go ]; then
	echo "vmtest: bad control line: $tag $now $seed $upstream"
	poweroff -f
fi
exec 3<&-
date -u -s "@$now" > /dev/null
echo "$seed" > /dev/urandom
echo "vmtest: go"
insmod /lib/modules/%s || echo "vmtest: insmod failed"
if ! mount -t ext4 /dev/vda /data; then
	echo "vmtest: mount failed"
	poweroff -f
fi
echo "vmtest: mount $(grep ' /data ' /proc/mounts)"
echo "vmtest: ext4 $(tr '\n' ' ' < /proc/fs/ext4/vda/options)"
echo "vmtest: write_cache $(cat /sys/block/vda/queue/write_cache)"
[ "$upstream" = - ] || export SHOPBRIDGE_UPSTREAM="$upstream"
SHOPBRIDGE_ADMIN_TOKEN=` + AdminToken + ` shopbridge run --listen :8480 --data /data --mdns=false --demo --sync-interval 2s
echo "vmtest: shopbridge exited with status $?"
poweroff -f
`

// BuildInitramfs writes the guest's initramfs to dst: busybox (static),
// the shopbridge binary (static), the kernel's modules and the init script.
func BuildInitramfs(dst string, k *Kernel, busybox, shopbridge string) error {
	for _, f := range []string{busybox, shopbridge} {
		if err := staticELF(f); err != nil {
			return fmt.Errorf("the guest has no libc: %w", err)
		}
	}
	mods, err := k.Modules(guestModules...)
	if err != nil {
		return err
	}
	last := mods[len(mods)-1]
	if modName(last) != "virtio_blk" {
		return fmt.Errorf("module order ends with %s, want virtio_blk", last)
	}
	fs := NewInitramfs()
	fs.AddFile("bin/busybox", busybox, 0o755)
	fs.AddFile("bin/shopbridge", shopbridge, 0o755)
	var early []string
	for _, m := range mods {
		fs.AddFile("lib/modules/"+filepath.Base(m), m, 0o644)
		if m != last {
			early = append(early, filepath.Base(m))
		}
	}
	fs.AddData("init", []byte(fmt.Sprintf(initScript, strings.Join(early, " "), filepath.Base(last))), 0o755)
	return fs.WriteFile(dst)
}
