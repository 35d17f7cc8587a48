// Package vmtest holds the tests that need a whole machine: a kernel, a
// disk and a power cut. Killing the daemon (SIGKILL, as the daemon and sync
// tests do) leaves the operating system's page cache in place; a shop PC
// that loses power loses that cache and whatever its disk had not yet
// written. These tests run shopbridge in a QEMU guest with a Debian kernel,
// its store on ext4 on a virtio disk, and cut the guest's power by killing
// QEMU.
//
// The disk is an NBD export served by the test (Disk) with a volatile write
// cache that loses, at the cut, a random part of what was written since the
// last flush. So an fsync that did not reach the disk, an ext4 mount without
// barriers or a missing fdatasync in bbolt loses receipts here.
//
// The package's non-test code builds what the guest needs: the Debian
// kernel (fetched with apt-get download and unpacked with dpkg-deb into a
// cache), an initramfs (busybox, the kernel modules for virtio and ext4,
// the shopbridge binary and an init script), and runs QEMU.
//
// Settings, all environment variables:
//
//	SHOPBRIDGE_STRICT=1       fail instead of skipping when something is missing (CI)
//	SHOPBRIDGE_VM_KERNEL=DIR  an unpacked Debian linux-image package to use
//	                          (default: fetched into the user cache directory)
//	SHOPBRIDGE_VM_ACCEL=A     kvm or tcg (default: kvm; tcg without /dev/kvm or where it is PVM)
//	SHOPBRIDGE_VM_BOOT=B      cold (a full boot after each cut) or resume (resume a
//	                          snapshot taken before the kernel touched the disk);
//	                          default: cold with kvm, resume with tcg
//	SHOPBRIDGE_VM_CUTS=N      power cuts (default 30)
//	SHOPBRIDGE_VM_SEED=N      repeat the disk's choices and the cut moments of a run
package vmtest
