package machine

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/conout"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/serial"
	"github.com/govmm/govmm/internal/kvmirq"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// Machine is a built microVM, ready to Run once.
type Machine struct {
	cfg    Config
	sys    *kvm.System
	kvm    *kvm.VM
	ram    *memory.RAM
	ramMap []memory.Mapping // the RAM's layout, kept past Close for InRAM
	buses  vcpu.Buses
	serial *serial.Serial
	// conOut carries the console's output to cfg.Console off the vCPUs.
	conOut *conout.Output
	entry  *boot.Entry
	cpuid  []kvm.CPUIDEntry

	// PCI bus 0, its next free slot, the BAR window, MSI vectors and the
	// shared INTx lines.
	pci      *pci.Bus
	nextSlot uint8
	bars     barAllocator
	msi      *kvmirq.MSIRouter
	intx     *kvmirq.SharedLines
	// consoleIn feeds typed input to the virtio console when it carries
	// the console.
	consoleIn *inputQueue
	// closers stop the devices before the VM goes, last added first.
	closers []io.Closer
	// virtio names each virtio transport for QueueStats: "net0", "disk1".
	virtio []namedTransport

	// events carries guest requests to end the VM from device callbacks.
	events chan devices.Event

	// running holds the vCPUs while Run runs, for Stats.
	runningMu sync.Mutex
	running   []*vcpu.VCPU

	closeOnce sync.Once
	closeErr  error
}

// New opens KVM, maps guest memory, loads the kernel and wires the devices
// for cfg, which govmm.Config.Validate has checked. Call Run, or Close to
// release everything without running.
func New(cfg Config) (*Machine, error) {
	m := &Machine{cfg: cfg, events: make(chan devices.Event, 1)}
	if err := m.build(); err != nil {
		return nil, errors.Join(err, m.Close())
	}
	return m, nil
}

func (m *Machine) build() error {
	// The kernel and initrd stay files until boot.Load reads them straight
	// into guest RAM: tens of MiB that never pass through govmm's heap.
	kf, kernel, err := openKernel(m.cfg.Kernel, m.cfg.Boot, m.cfg.KernelCache)
	if err != nil {
		return err
	}
	defer kf.Close()
	var initrd boot.Image
	if m.cfg.Initrd != "" {
		f, img, err := openImage(m.cfg.Initrd)
		if err != nil {
			return fmt.Errorf("initrd: %w", err)
		}
		defer f.Close()
		initrd = img
	}
	if err := m.openKVM(); err != nil {
		return err
	}
	if err := m.createVM(); err != nil {
		return err
	}
	if m.ram, err = memory.New(m.cfg.Memory); err != nil {
		return err
	}
	m.ramMap = m.ram.Mappings()
	if err := m.registerMemory(); err != nil {
		return err
	}
	rsdp, err := m.writeACPI()
	if err != nil {
		return err
	}
	m.entry, err = kernel.load(m.ram, initrd, m.cfg.Cmdline, rsdp)
	if err != nil {
		return fmt.Errorf("load kernel %q: %w", m.cfg.Kernel, err)
	}
	if err := m.wireDevices(); err != nil {
		return err
	}
	return m.wireVirtio()
}

func (m *Machine) openKVM() error {
	sys, err := kvm.Open(m.cfg.KVMDevice)
	if err != nil {
		return err
	}
	m.sys = sys
	if err := sys.Require(kvm.CapIRQChip, kvm.CapUserMemory, kvm.CapExtCPUID, kvm.CapPIT2,
		kvm.CapImmediateExit, kvm.CapIRQFD, kvm.CapIOEventFD, kvm.CapIRQRouting); err != nil {
		return err
	}
	maxVCPUs, err := sys.MaxVCPUs()
	if err != nil {
		return err
	}
	if m.cfg.CPUs > maxVCPUs {
		return &CPULimitError{Asked: m.cfg.CPUs, Max: maxVCPUs}
	}
	m.cpuid, err = sys.SupportedCPUID()
	return err
}

func (m *Machine) createVM() error {
	vm, err := m.sys.CreateVM()
	if err != nil {
		return err
	}
	m.kvm = vm
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

func (m *Machine) registerMemory() error {
	for slot, r := range m.ram.Mappings() {
		if err := m.kvm.SetUserMemoryRegion(uint32(slot), uint64(r.Guest), r.Size, r.Host); err != nil {
			return err
		}
	}
	return nil
}

// ConsoleInput queues bytes for the guest's console, as if typed.
func (m *Machine) ConsoleInput(p []byte) {
	if m.consoleIn != nil {
		m.consoleIn.Write(p) // never blocks; fails only once the VM is closed
		return
	}
	m.serial.Input(p)
}

// Close releases KVM, guest memory and every fd. Run calls it on return.
func (m *Machine) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		// Devices first: their workers may still touch guest RAM and
		// signal MSI vectors.
		for i := len(m.closers) - 1; i >= 0; i-- {
			errs = append(errs, m.closers[i].Close())
		}
		if m.msi != nil {
			errs = append(errs, m.msi.Close())
		}
		if m.kvm != nil {
			errs = append(errs, m.kvm.Close())
		}
		if m.ram != nil {
			errs = append(errs, m.ram.Close())
		}
		if m.sys != nil {
			errs = append(errs, m.sys.Close())
		}
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// HugePages says why guest RAM is not backed by transparent huge pages, or
// nil if it is (or no RAM was mapped).
func (m *Machine) HugePages() error {
	if m.ram == nil {
		return nil
	}
	return m.ram.HugePages()
}
