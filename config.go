// Package govmm runs a Linux microVM on KVM: describe it with a Config, build
// it with New and Run it until the guest powers off, resets, crashes or the
// caller cancels. This package is the public API; the machine behind it
// (memory layout, devices, vCPUs) is internal and may change.
package govmm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/govmm/govmm/internal/machine"
	"github.com/govmm/govmm/memory"
)

// Defaults a caller gets for zero fields.
const (
	DefaultMemory    = 512 << 20 // bytes
	DefaultCPUs      = 1
	DefaultKVMDevice = "/dev/kvm"
	// DefaultCmdline sends the console to COM1, resets through the i8042,
	// turns a panic into an immediate warm reboot that govmm reports as a
	// crash (Linux writes the BIOS warm-reset flag, 0x1234 at 0x472, before
	// it resets), and keeps the console quiet: every byte the guest prints
	// is a VM exit.
	DefaultCmdline = "console=ttyS0 reboot=k,panic_warm panic=-1"
	// DefaultVirtioConsoleCmdline is DefaultCmdline for a guest whose
	// console is the virtio console (ConsoleDevice VirtioConsole). ttyS0
	// stays first: a distribution kernel registers hvc0 only when its
	// virtio_console module loads, and until then its messages and
	// init's first lines need somewhere to go.
	DefaultVirtioConsoleCmdline = "console=ttyS0 console=hvc0 reboot=k,panic_warm panic=-1"

	// minMemory is the least RAM govmm will start a guest with.
	minMemory = 16 * memory.MiB
)

// Config describes one microVM.
type Config struct {
	Kernel  string // path to a bzImage, or an uncompressed ELF vmlinux with a PVH entry
	Initrd  string // path to an initramfs; optional
	Cmdline string // kernel command line; DefaultCmdline if empty
	Memory  uint64 // guest RAM in bytes; DefaultMemory if 0
	CPUs    int    // vCPUs; DefaultCPUs if 0

	// Console receives what the guest writes to its console; nil discards
	// it. Input goes to (*VM).ConsoleInput. It is written from a goroutine
	// of its own, a line or a millisecond at a time, never from a vCPU: a
	// writer that blocks loses output (Result.ConsoleDropped), never stalls
	// the guest or its stop.
	Console io.Writer

	// ConsoleDevice picks the device the console is on: COM1 (the
	// default) or virtio-console.
	ConsoleDevice ConsoleKind

	// Boot picks how the kernel is entered (BootAuto if zero).
	Boot BootPath
	// KernelCache is the directory where a bzImage's vmlinux, extracted
	// for a PVH boot, is kept by the bzImage's content hash, so that only
	// the first boot pays for the extraction; "" extracts it to a
	// temporary file at each boot.
	KernelCache string

	// Ports are further virtio consoles, one port each, for programs
	// rather than people: the guest's hvc ttys after the console's, in
	// order (hvc0, hvc1, ... with the serial console; hvc1, ... with
	// VirtioConsole). govmm run --bundle talks to its guest over three.
	Ports []Port

	// Disks are virtio-blk disks, the guest's /dev/vda, /dev/vdb, ... in order.
	Disks []Disk
	// NICs are virtio-net interfaces on tap devices, in PCI slot order.
	NICs []NIC

	// KVMDevice is the path of the KVM device; DefaultKVMDevice if empty.
	KVMDevice string

	// Confine, when not nil, confines the whole process to this VM from
	// its first instruction on: see Confinement. Only for a process that
	// runs this one VM, as govmm run does.
	Confine *Confinement
}

// Confinement is what Run leaves the process once every vCPU is created and
// configured, before the guest's first instruction: no capability on any
// thread and, unless NoSeccomp, a seccomp filter on every thread that allows
// only the system calls a running VM makes (README, Security, lists them)
// and the caller's needs below. A thread that makes any other call stops the
// process at once with a line on standard error naming the call, and exit
// status KillStatus. It lasts for the life of the process: no other VM can be
// built in it afterwards, and no file opened, unless Files. It needs
// no_new_privs on every thread, which Run sets, and a build without cgo,
// where Go reaches every thread: a cgo build is refused.
type Confinement struct {
	// NoSeccomp leaves out the filter (for debugging: it is unsafe), but
	// still drops every capability.
	NoSeccomp bool
	// Files lets the process create, replace and remove files after the
	// guest starts (govmm run's --stats file).
	Files bool
	// Ioctls are further ioctl request numbers the caller issues while the
	// VM runs, e.g. a terminal's (TCGETS, TCSETS, TIOCGWINSZ).
	Ioctls []uint64
	// KillStatus is the exit status of a process stopped by a forbidden
	// call.
	KillStatus int
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid configuration")

// FieldError names the field at fault and how to fix it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return ErrInvalidConfig }

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Cmdline == "" {
		c.Cmdline = DefaultCmdline
		if c.ConsoleDevice == VirtioConsole {
			c.Cmdline = DefaultVirtioConsoleCmdline
		}
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.CPUs == 0 {
		c.CPUs = DefaultCPUs
	}
	if c.KVMDevice == "" {
		c.KVMDevice = DefaultKVMDevice
	}
	if c.Console == nil {
		c.Console = io.Discard
	}
	return c
}

// Validate checks what can be checked without KVM. Zero fields take their
// defaults first.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	var images uint64 // what the kernel and initrd take of guest RAM
	if c.Kernel == "" {
		errs = append(errs, &FieldError{"kernel", "no kernel given: pass the path of a bzImage, e.g. /boot/vmlinuz-$(uname -r)"})
	} else if size, err := readable(c.Kernel); err != nil {
		errs = append(errs, &FieldError{"kernel", err.Error()})
	} else {
		images += size
	}
	if c.Initrd != "" {
		if size, err := readable(c.Initrd); err != nil {
			errs = append(errs, &FieldError{"initrd", err.Error()})
		} else {
			images += size
		}
	}
	if err := checkMemory(c.Memory); err != nil {
		errs = append(errs, err)
	} else if images >= c.Memory {
		// Checked before either file is read: a wrong path must not make
		// govmm read gigabytes into its heap.
		errs = append(errs, &FieldError{"memory", fmt.Sprintf("the kernel and initrd take %d MiB, more than the guest's %d MiB of RAM: check the paths, or give more --memory", images/memory.MiB, c.Memory/memory.MiB)})
	}
	if len(c.Cmdline) > maxCmdline {
		errs = append(errs, &FieldError{"cmdline", fmt.Sprintf("%d bytes: Linux on x86 takes at most %d", len(c.Cmdline), maxCmdline)})
	}
	if c.CPUs < 1 || c.CPUs > machine.MaxCPUs {
		errs = append(errs, &FieldError{"cpus", fmt.Sprintf("%d vCPUs asked: give between 1 and %d", c.CPUs, machine.MaxCPUs)})
	}
	errs = append(errs, c.validateDevices()...)
	return errors.Join(errs...)
}

func checkMemory(size uint64) error {
	if size < minMemory {
		return &FieldError{"memory", fmt.Sprintf("%d MiB is too little to boot Linux: give at least %d MiB, e.g. 512M", size/memory.MiB, minMemory/memory.MiB)}
	}
	if size%memory.PageSize != 0 {
		return &FieldError{"memory", fmt.Sprintf("%d bytes is not a multiple of 4 KiB: use a size like 512M", size)}
	}
	host, err := hostMemory()
	if err == nil && size > host {
		return &FieldError{"memory", fmt.Sprintf("%d MiB asked but the host has %d MiB: give less", size/memory.MiB, host/memory.MiB)}
	}
	return nil
}

// maxCmdline is the longest command line x86 Linux takes
// (COMMAND_LINE_SIZE, less the final NUL); a kernel's setup header may
// allow less, which loading it checks.
const maxCmdline = 2047

// readable returns the size of a regular, non-empty file that can be
// opened for reading, or says why it is not one. The open does not block:
// a FIFO given as a kernel must be refused, not waited on for a writer.
func readable(path string) (uint64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file (%s): give the path of a file", path, fileKind(st.Mode()))
	}
	if st.Size() == 0 {
		return 0, fmt.Errorf("%s is empty", path)
	}
	return uint64(st.Size()), nil
}

// fileKind names a mode's file type for an error message.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return m.Type().String()
}

// ParseSize reads a size such as "512M", "4G", "65536K" or "1073741824"
// (bytes), as the command line's --memory takes it. Suffixes are binary
// (K = 1024) and may be followed by "iB" or "B".
func ParseSize(s string) (uint64, error) { return memory.ParseSize(s) }
