package govmm

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"

	"github.com/govmm/govmm/internal/machine"
)

// Disk is one virtio-blk disk backed by a raw image file or a block device.
type Disk struct {
	Path     string
	ReadOnly bool   // the guest sees a read-only disk; the file is opened read-only
	Serial   string // what the guest reads as the disk's ID (VIRTIO_BLK_T_GET_ID); at most 20 bytes
	// IO is how reads and writes reach the image; the zero value,
	// IOAuto, suits every image.
	IO IOMode
}

// NIC is one virtio-net interface backed by a tap device.
type NIC struct {
	Tap string           // name of an existing tap, or one to create (needs CAP_NET_ADMIN)
	MAC net.HardwareAddr // the guest's MAC; a random locally administered one if nil
}

// Port is a virtio console with one port, a byte stream between a host
// program and the guest: what the guest writes to its hvc tty arrives on
// Out, what In yields the guest reads. Out's Write runs on the device's own
// goroutine, never a vCPU's; a slow Out slows only this port.
type Port struct {
	In  io.Reader // what the guest reads; nil: nothing
	Out io.Writer // what the guest writes; nil discards it
}

func (p Port) machine() machine.Port {
	out := p.Out
	if out == nil {
		out = io.Discard
	}
	return machine.Port{In: p.In, Out: out}
}

// ConsoleKind says which device carries the guest console.
type ConsoleKind int

const (
	// SerialConsole is COM1, the guest's ttyS0.
	SerialConsole ConsoleKind = iota
	// VirtioConsole is a virtio-console port, the guest's hvc0. COM1 stays,
	// for the kernel's early messages.
	VirtioConsole
)

// BootPath is how the kernel is entered.
type BootPath int

const (
	// BootAuto enters an ELF vmlinux through PVH and a bzImage at its
	// 64-bit entry, as BootBzImage does.
	BootAuto BootPath = iota
	// BootBzImage takes only a bzImage and enters it at its 64-bit entry:
	// the guest's decompressor unpacks and places the kernel, randomising
	// where (KASLR) on the way.
	BootBzImage
	// BootPVH enters through the PVH entry point in 32-bit protected mode:
	// an ELF vmlinux as it is; a bzImage's vmlinux extracted on the host
	// (gzip, bzip2, LZ4, LZMA, LZO, XZ or ZSTD payloads). No decompressor runs in the
	// guest, which saves its time and its exits; the kernel then runs
	// where it was linked, without the decompressor's physical and
	// virtual KASLR of the kernel image.
	BootPVH
)

// maxSerial is the size of the virtio-blk ID string (virtio 1.2 §5.2.6).
const maxSerial = 20

// maxTapName is IFNAMSIZ minus the terminating NUL.
const maxTapName = 15

// machine is the disk as the machine opens it.
func (d Disk) machine() machine.Disk {
	io, _ := d.IO.machine() // Validate refused a mode without one
	return machine.Disk{Path: d.Path, ReadOnly: d.ReadOnly, Serial: d.Serial, IO: io}
}

// machine is the NIC as the machine opens it.
func (n NIC) machine() machine.NIC { return machine.NIC{Tap: n.Tap, MAC: n.MAC} }

// diskKind refuses what cannot back a disk: anything but a regular file (a
// raw image) or a block device, which the disk device serves alike.
func diskKind(mode fs.FileMode) error {
	switch {
	case mode.IsRegular():
		return nil
	case mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0:
		return nil
	}
	return fmt.Errorf("is not a regular file or a block device (%s): give a raw disk image or a block device such as /dev/loop0", fileKind(mode))
}

func (d Disk) validate(i int) error {
	field := fmt.Sprintf("disk[%d]", i)
	if d.Path == "" {
		return &FieldError{field, "no path: give a raw image file or a block device, e.g. --disk path=rootfs.img"}
	}
	flag := os.O_RDWR
	if d.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(d.Path, flag|syscall.O_NONBLOCK, 0) // a FIFO is refused, not waited on
	if err != nil {
		if os.IsPermission(err) && !d.ReadOnly {
			return &FieldError{field, fmt.Sprintf("%v: add ,ro to attach it read-only", err)}
		}
		return &FieldError{field, err.Error()}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &FieldError{field, err.Error()}
	}
	if err := diskKind(st.Mode()); err != nil {
		return &FieldError{field, fmt.Sprintf("%s %v", d.Path, err)}
	}
	if _, ok := d.IO.machine(); !ok {
		return &FieldError{field, fmt.Sprintf("unknown I/O mode %d: use IOAuto, IOUring, IOBlocking or IOInline", d.IO)}
	}
	if len(d.Serial) > maxSerial {
		return &FieldError{field, fmt.Sprintf("serial %q is %d bytes: at most %d fit", d.Serial, len(d.Serial), maxSerial)}
	}
	return nil
}

func (n NIC) validate(i int) error {
	field := fmt.Sprintf("net[%d]", i)
	if n.Tap == "" || len(n.Tap) > maxTapName {
		return &FieldError{field, fmt.Sprintf("tap name %q: give 1 to %d characters, e.g. tap=tap0", n.Tap, maxTapName)}
	}
	if n.MAC != nil {
		if len(n.MAC) != 6 {
			return &FieldError{field, fmt.Sprintf("MAC %v: give a 48-bit MAC like 52:54:00:12:34:56", n.MAC)}
		}
		if n.MAC[0]&1 != 0 {
			return &FieldError{field, fmt.Sprintf("MAC %v is a multicast address: the first byte must be even, e.g. 52:54:00:12:34:56", n.MAC)}
		}
		if bytes.Equal(n.MAC, make(net.HardwareAddr, 6)) {
			return &FieldError{field, "MAC 00:00:00:00:00:00 is no address: give one like 52:54:00:12:34:56, or none for a random one"}
		}
	}
	return nil
}

// validateDevices checks the disks and NICs: each valid, no image attached
// twice, no tap used twice.
func (c Config) validateDevices() []error {
	var errs []error
	paths := map[string]bool{}
	for i, d := range c.Disks {
		if err := d.validate(i); err != nil {
			errs = append(errs, err)
			continue
		}
		if paths[d.Path] {
			errs = append(errs, &FieldError{fmt.Sprintf("disk[%d]", i), fmt.Sprintf("%s is attached twice: the guest would corrupt it", d.Path)})
		}
		paths[d.Path] = true
	}
	taps := map[string]bool{}
	for i, n := range c.NICs {
		if err := n.validate(i); err != nil {
			errs = append(errs, err)
			continue
		}
		if taps[n.Tap] {
			errs = append(errs, &FieldError{fmt.Sprintf("net[%d]", i), fmt.Sprintf("tap %s is used twice: give each NIC its own tap", n.Tap)})
		}
		taps[n.Tap] = true
	}
	if c.Boot < BootAuto || c.Boot > BootPVH {
		errs = append(errs, &FieldError{"boot", fmt.Sprintf("unknown boot path %d: use BootAuto, BootBzImage or BootPVH", c.Boot)})
	}
	if c.ConsoleDevice != SerialConsole && c.ConsoleDevice != VirtioConsole {
		errs = append(errs, &FieldError{"console", fmt.Sprintf("unknown console kind %d", c.ConsoleDevice)})
	}
	return errs
}
