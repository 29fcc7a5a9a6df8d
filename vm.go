package govmm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/serial"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// VM is a configured microVM, ready to Run once.
type VM struct {
	cfg    Config
	sys    *kvm.System
	kvm    *kvm.VM
	ram    *memory.RAM
	ramMap []memory.Mapping // the RAM's layout, kept past Close for InRAM
	buses  vcpu.Buses
	serial *serial.Serial
	entry  *boot.Entry
	cpuid  []kvm.CPUIDEntry

	// PCI bus 0, its next free slot, the BAR window, MSI vectors and the
	// shared INTx lines.
	pci      *pci.Bus
	nextSlot uint8
	bars     barAllocator
	msi      *gsiRouter
	intx     map[uint32]*sharedIRQ
	// consoleIn feeds typed input to the virtio console when it carries
	// the console.
	consoleIn *inputQueue
	// closers stop the devices before the VM goes, last added first.
	closers []io.Closer
	// virtio names each virtio transport for QueueStats: "net0", "disk1".
	virtio []namedTransport

	// events carries guest requests to end the VM from device callbacks.
	events chan devices.Event

	ran bool
	// running holds the vCPUs while Run runs, for Stats.
	runningMu sync.Mutex
	running   []*vcpu.VCPU

	closeOnce sync.Once
	closeErr  error
}

// New checks cfg, opens KVM, maps guest memory, loads the kernel and wires the
// devices. Call Run, or Close to release everything without running.
func New(cfg Config) (*VM, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &VM{cfg: cfg, events: make(chan devices.Event, 1)}
	if err := v.build(); err != nil {
		return nil, errors.Join(err, v.Close())
	}
	// The kernel and initrd files now live in guest RAM; hand their heap
	// copies (tens of MiB) back to the host instead of keeping them as RSS
	// until the scavenger gets to them.
	debug.FreeOSMemory()
	return v, nil
}

func (v *VM) build() error {
	kernel, err := loadKernel(v.cfg.Kernel)
	if err != nil {
		return err
	}
	var initrd []byte
	if v.cfg.Initrd != "" {
		if initrd, err = os.ReadFile(v.cfg.Initrd); err != nil {
			return fmt.Errorf("read initrd: %w", err)
		}
	}
	if err := v.openKVM(); err != nil {
		return err
	}
	if err := v.createVM(); err != nil {
		return err
	}
	if v.ram, err = memory.New(v.cfg.Memory); err != nil {
		return err
	}
	v.ramMap = v.ram.Mappings()
	if err := v.registerMemory(); err != nil {
		return err
	}
	rsdp, err := v.writeACPI()
	if err != nil {
		return err
	}
	v.entry, err = boot.Load(v.ram, boot.Config{Kernel: kernel, Initrd: initrd, Cmdline: v.cfg.Cmdline, RSDP: rsdp})
	if err != nil {
		return fmt.Errorf("load kernel %q: %w", v.cfg.Kernel, err)
	}
	if err := v.wireDevices(); err != nil {
		return err
	}
	return v.wireVirtio()
}

func loadKernel(path string) (*boot.Kernel, error) {
	image, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel: %w", err)
	}
	k, err := boot.ParseKernel(image)
	if err != nil {
		return nil, fmt.Errorf("kernel %q: %w", path, err)
	}
	return k, nil
}

func (v *VM) openKVM() error {
	sys, err := kvm.Open(v.cfg.KVMDevice)
	if err != nil {
		return err
	}
	v.sys = sys
	if err := sys.Require(kvm.CapIRQChip, kvm.CapUserMemory, kvm.CapExtCPUID, kvm.CapPIT2,
		kvm.CapImmediateExit, kvm.CapIRQFD, kvm.CapIOEventFD, kvm.CapIRQRouting); err != nil {
		return err
	}
	maxVCPUs, err := sys.MaxVCPUs()
	if err != nil {
		return err
	}
	if v.cfg.CPUs > maxVCPUs {
		return &FieldError{"cpus", fmt.Sprintf("%d vCPUs asked but KVM on this host allows at most %d", v.cfg.CPUs, maxVCPUs)}
	}
	v.cpuid, err = sys.SupportedCPUID()
	return err
}

func (v *VM) createVM() error {
	vm, err := v.sys.CreateVM()
	if err != nil {
		return err
	}
	v.kvm = vm
	if err := vm.SetTSSAddr(tssAddr); err != nil {
		return err
	}
	if err := vm.SetIdentityMapAddr(identityMapAddr); err != nil {
		return err
	}
	if err := vm.CreateIRQChip(); err != nil {
		return err
	}
	return vm.CreatePIT2()
}

func (v *VM) registerMemory() error {
	for slot, m := range v.ram.Mappings() {
		if err := v.kvm.SetUserMemoryRegion(uint32(slot), uint64(m.Guest), m.Size, m.Host); err != nil {
			return err
		}
	}
	return nil
}

// ConsoleInput queues bytes for the guest's serial console, as if typed.
func (v *VM) ConsoleInput(p []byte) {
	if v.consoleIn != nil {
		v.consoleIn.Write(p) // never blocks; fails only once the VM is closed
		return
	}
	v.serial.Input(p)
}

// Close releases KVM, guest memory and every fd. Run calls it on return.
func (v *VM) Close() error {
	v.closeOnce.Do(func() {
		var errs []error
		// Devices first: their workers may still touch guest RAM and
		// signal MSI vectors.
		for i := len(v.closers) - 1; i >= 0; i-- {
			errs = append(errs, v.closers[i].Close())
		}
		if v.msi != nil {
			errs = append(errs, v.msi.Close())
		}
		if v.kvm != nil {
			errs = append(errs, v.kvm.Close())
		}
		if v.ram != nil {
			errs = append(errs, v.ram.Close())
		}
		if v.sys != nil {
			errs = append(errs, v.sys.Close())
		}
		v.closeErr = errors.Join(errs...)
	})
	return v.closeErr
}
