package compare

import (
	"slices"
	"strings"
	"testing"

	"github.com/govmm/govmm/cmd/govmm/internal/bundle"
)

// The classic VM is QEMU's PC machine with govmm's guest: the kernel
// command line that puts init in agent mode, the root image read-only on
// virtio-blk, and three single-port virtio-serial devices (plain consoles:
// hvc0..hvc2 in PCI order) on the sockets compare dials.
func TestQEMUCommandLine(t *testing.T) {
	vm := qemuVM{Kernel: "/k/vmlinuz", Initrd: "/k/initrd.gz", Image: "/cache/root,1.ext4", Memory: "256M", CPUs: 1,
		Cmdline: "console=ttyS0 quiet govmm.agent=hvc0,hvc1,hvc2", Dir: "/run/vm"}
	want := `-M pc -accel kvm -cpu host -nodefaults -no-user-config -nographic -no-reboot
-m 256M -smp 1
-kernel /k/vmlinuz -initrd /k/initrd.gz -append console=ttyS0 quiet govmm.agent=hvc0,hvc1,hvc2
-serial file:/run/vm/console.log
-drive file=/cache/root,,1.ext4,if=none,id=root,format=raw,readonly=on
-device virtio-blk-pci,drive=root,serial=govmm-bundle-root
-device virtio-rng-pci
-chardev socket,id=c0,path=/run/vm/control.sock,server=on,wait=off
-device virtio-serial-pci,id=vs0,max_ports=1
-device virtconsole,bus=vs0.0,chardev=c0
-chardev socket,id=c1,path=/run/vm/stdout.sock,server=on,wait=off
-device virtio-serial-pci,id=vs1,max_ports=1
-device virtconsole,bus=vs1.0,chardev=c1
-chardev socket,id=c2,path=/run/vm/stderr.sock,server=on,wait=off
-device virtio-serial-pci,id=vs2,max_ports=1
-device virtconsole,bus=vs2.0,chardev=c2`
	args := vm.args()
	if got := strings.Join(args, " "); got != strings.ReplaceAll(want, "\n", " ") {
		t.Errorf("qemu %s\nwant\n%s", got, want)
	}
	if i := slices.Index(args, "-append"); i < 0 || args[i+1] != vm.Cmdline {
		t.Errorf("the kernel command line is not one argument after -append: %q", args)
	}
}

func TestMissingQEMU(t *testing.T) {
	_, err := NewQEMU("no-such-qemu-xyz", "k", "i", "256M", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Errorf("%v", err)
	}
}

// A bundle's block device mounts are disks after the root image, in the
// guest's order, and a NIC is a virtio-net on the tap with the MAC the
// guest finds it by.
func TestQEMUDisksAndNIC(t *testing.T) {
	vm := qemuVM{Image: "/cache/root.ext4", Memory: "256M", CPUs: 1, Dir: "/run/vm",
		Disks: []bundle.Disk{{Path: "/dev/loop3"}, {Path: "/img/ro.img", ReadOnly: true}},
		Tap:   "tap9", MAC: qemuMAC}
	got := strings.Join(vm.args(), " ")
	for _, want := range []string{
		"-device virtio-blk-pci,drive=root,serial=govmm-bundle-root -drive file=/dev/loop3,if=none,id=disk1,format=raw -device virtio-blk-pci,drive=disk1 -drive file=/img/ro.img,if=none,id=disk2,format=raw,readonly=on -device virtio-blk-pci,drive=disk2",
		"-netdev tap,id=net0,ifname=tap9,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=" + qemuMAC,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("qemu %s\nlacks %s", got, want)
		}
	}
}
