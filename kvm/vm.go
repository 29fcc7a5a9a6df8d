package kvm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// VM is a KVM virtual machine fd.
type VM struct {
	f        *os.File
	mmapSize int
	ring     *coalescedRing
}

func (vm *VM) fd() uintptr { return vm.f.Fd() }

// Close closes the VM fd; KVM frees the VM once its vCPU fds are closed too.
func (vm *VM) Close() error { return vm.f.Close() }

// SetUserMemoryRegion maps size bytes of host memory at hostAddr into the
// guest at guestAddr, in memory slot slot.
func (vm *VM) SetUserMemoryRegion(slot uint32, guestAddr, size uint64, hostAddr uintptr) error {
	r := userspaceMemoryRegion{Slot: slot, GuestPhysAddr: guestAddr, MemorySize: size, UserAddr: uint64(hostAddr)}
	if _, err := ioctlPtr(vm.fd(), kvmSetUserMemoryRegion, &r); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION slot %d [%#x, +%#x): %w", slot, guestAddr, size, err)
	}
	return nil
}

// SetTSSAddr places the three pages KVM needs for a real-mode TSS on Intel.
func (vm *VM) SetTSSAddr(addr uint64) error {
	if _, err := ioctl(vm.fd(), kvmSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("KVM_SET_TSS_ADDR %#x: %w", addr, err)
	}
	return nil
}

// SetIdentityMapAddr places the page KVM needs for its identity map on Intel.
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	if _, err := ioctlPtr(vm.fd(), kvmSetIdentityMapAddr, &addr); err != nil {
		return fmt.Errorf("KVM_SET_IDENTITY_MAP_ADDR %#x: %w", addr, err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel PIC, I/O APIC and local APICs.
func (vm *VM) CreateIRQChip() error {
	if _, err := ioctl(vm.fd(), kvmCreateIRQChip, 0); err != nil {
		return fmt.Errorf("KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel i8254 timer, with a dummy speaker port.
func (vm *VM) CreatePIT2() error {
	cfg := pitConfig{Flags: pitSpeakerDummy}
	if _, err := ioctlPtr(vm.fd(), kvmCreatePIT2, &cfg); err != nil {
		return fmt.Errorf("KVM_CREATE_PIT2: %w", err)
	}
	return nil
}

// IRQLine sets the level of an interrupt input of the in-kernel PIC and I/O APIC.
func (vm *VM) IRQLine(irq uint32, level bool) error {
	l := irqLevel{IRQ: irq}
	if level {
		l.Level = 1
	}
	if _, err := ioctlPtr(vm.fd(), kvmIRQLine, &l); err != nil {
		return fmt.Errorf("KVM_IRQ_LINE %d=%d: %w", irq, l.Level, err)
	}
	return nil
}

// IRQFD makes a write to eventFD raise guest interrupt gsi inside KVM.
func (vm *VM) IRQFD(eventFD int, gsi uint32) error { return vm.irqfd(eventFD, gsi, 0) }

// RemoveIRQFD undoes IRQFD.
func (vm *VM) RemoveIRQFD(eventFD int, gsi uint32) error {
	return vm.irqfd(eventFD, gsi, irqfdFlagDeassign)
}

func (vm *VM) irqfd(eventFD int, gsi, flags uint32) error {
	r := irqfd{FD: uint32(eventFD), GSI: gsi, Flags: flags}
	if _, err := ioctlPtr(vm.fd(), kvmIRQFD, &r); err != nil {
		return fmt.Errorf("KVM_IRQFD fd %d gsi %d flags %#x: %w", eventFD, gsi, flags, err)
	}
	return nil
}

// IOEventFD makes a guest write of length bytes (0 for any length, else 1,
// 2, 4 or 8) at addr, a port if pio or else a guest-physical MMIO address,
// signal eventFD inside KVM without an exit to user space.
func (vm *VM) IOEventFD(eventFD int, addr uint64, length uint32, pio bool) error {
	return vm.ioeventfd(ioeventfd{Addr: addr, Len: length, FD: int32(eventFD)}, pio, 0)
}

// IOEventFDMatch is IOEventFD for writes of the value data only.
func (vm *VM) IOEventFDMatch(eventFD int, addr uint64, length uint32, pio bool, data uint64) error {
	r := ioeventfd{Addr: addr, Len: length, FD: int32(eventFD), Datamatch: data}
	return vm.ioeventfd(r, pio, ioeventfdFlagDatamatch)
}

// RemoveIOEventFD undoes IOEventFD.
func (vm *VM) RemoveIOEventFD(eventFD int, addr uint64, length uint32, pio bool) error {
	return vm.ioeventfd(ioeventfd{Addr: addr, Len: length, FD: int32(eventFD)}, pio, ioeventfdFlagDeassign)
}

// RemoveIOEventFDMatch undoes IOEventFDMatch; KVM matches on data too.
func (vm *VM) RemoveIOEventFDMatch(eventFD int, addr uint64, length uint32, pio bool, data uint64) error {
	r := ioeventfd{Addr: addr, Len: length, FD: int32(eventFD), Datamatch: data}
	return vm.ioeventfd(r, pio, ioeventfdFlagDatamatch|ioeventfdFlagDeassign)
}

func (vm *VM) ioeventfd(r ioeventfd, pio bool, flags uint32) error {
	r.Flags = flags
	space := "MMIO"
	if pio {
		r.Flags |= ioeventfdFlagPIO
		space = "port"
	}
	if _, err := ioctlPtr(vm.fd(), kvmIOEventFD, &r); err != nil {
		return fmt.Errorf("KVM_IOEVENTFD fd %d %s %#x len %d flags %#x: %w", r.FD, space, r.Addr, r.Len, r.Flags, err)
	}
	return nil
}

// SignalMSI injects a message-signalled interrupt.
func (vm *VM) SignalMSI(addr uint64, data uint32) error {
	m := msi{AddressLo: uint32(addr), AddressHi: uint32(addr >> 32), Data: data}
	if _, err := ioctlPtr(vm.fd(), kvmSignalMSI, &m); err != nil {
		return fmt.Errorf("KVM_SIGNAL_MSI %#x/%#x: %w", addr, data, err)
	}
	return nil
}

// CreateVCPU creates vCPU id and maps its kvm_run page. Create it on the OS
// thread that will run it.
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	fd, err := ioctl(vm.fd(), kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU %d: %w", id, err)
	}
	f := os.NewFile(fd, fmt.Sprintf("kvm-vcpu:%d", id))
	run, err := unix.Mmap(int(fd), 0, vm.mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("map kvm_run of vCPU %d: %w", id, err), f.Close())
	}
	return &VCPU{id: id, f: f, run: run, ring: vm.ring}, nil
}

// Stats opens the VM's binary statistics (KVM_GET_STATS_FD).
func (vm *VM) Stats() (*Stats, error) { return openStats(vm.fd(), "VM") }
