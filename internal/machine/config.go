// Package machine is govmm's composition root: it lays out guest memory,
// chooses every port, IRQ, GSI, PCI slot and BAR, builds the VM on KVM, wires
// the legacy devices, ACPI tables and virtio devices, sets the boot vCPU's
// entry state, and supervises the vCPUs until the guest ends the VM. The
// root package govmm is its only user and turns its types into the public
// API's.
package machine

import (
	"fmt"
	"io"

	"github.com/govmm/govmm/devices/virtio/blk"
	"github.com/govmm/govmm/devices/virtio/net"
)

// Config is a validated govmm.Config with its defaults applied.
type Config struct {
	Kernel, Initrd, Cmdline string
	Memory                  uint64
	CPUs                    int
	Console                 io.Writer
	// VirtioConsole puts the console on virtio-console rather than COM1.
	VirtioConsole bool
	// Ports are further virtio consoles, after the console in PCI order.
	Ports     []Port
	Disks     []Disk
	NICs      []NIC
	KVMDevice string
	// Boot picks how a bzImage is entered; KernelCache is where the
	// vmlinux of a bzImage booted through PVH is kept ("" : nowhere).
	Boot        BootPath
	KernelCache string
	// Confine, when not nil, is applied to the whole process once every
	// vCPU is configured and before the guest's first instruction.
	Confine *Confine
}

// Confine is what a process running one VM keeps (see confine.go).
type Confine struct {
	// Seccomp installs the system call filter; capabilities are dropped
	// either way.
	Seccomp bool
	// Files, Ioctls and KillStatus are the caller's own needs, as in
	// seccomp.Rules; the VM's ioctls are added to Ioctls.
	Files      bool
	Ioctls     []uint64
	KillStatus int
}

// BootPath is how the kernel is entered.
type BootPath int

const (
	// BootAuto enters an ELF vmlinux through PVH and a bzImage through its
	// own 64-bit entry.
	BootAuto BootPath = iota
	// BootBzImage takes only a bzImage, entered at its 64-bit entry: the
	// guest decompresses and places itself (with KASLR).
	BootBzImage
	// BootPVH enters through PVH: an ELF vmlinux as it is, a bzImage's
	// vmlinux extracted on the host.
	BootPVH
)

// Port is one virtio console beyond the guest's console: input read from
// In (nil: none), output written to Out.
type Port struct {
	In  io.Reader
	Out io.Writer
}

// IOMode is how a disk's reads and writes reach its image.
type IOMode = blk.IOMode

// The disk's I/O modes.
const (
	IOAuto     = blk.IOAuto
	IOUring    = blk.IOUring
	IOBlocking = blk.IOBlocking
	IOInline   = blk.IOInline
)

// CPULimitError says that KVM on this host runs fewer vCPUs than asked.
type CPULimitError struct{ Asked, Max int }

func (e *CPULimitError) Error() string {
	return fmt.Sprintf("%d vCPUs asked but KVM on this host allows at most %d", e.Asked, e.Max)
}

// Disk and NIC are the options their devices open with.
type (
	Disk = blk.Options
	NIC  = net.Options
)
