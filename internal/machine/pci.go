package machine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"sync"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
)

// barAllocator hands out naturally aligned BAR addresses from the 32-bit PCI
// window [next, end). Every BAR the VM has comes from here.
type barAllocator struct{ next, end uint64 }

func (a *barAllocator) alloc(size uint64) (uint64, error) {
	if bits.OnesCount64(size) != 1 {
		return 0, fmt.Errorf("BAR of %#x bytes: the size must be a power of two", size)
	}
	addr := (a.next + size - 1) &^ (size - 1)
	if addr < a.next || addr+size > a.end || addr+size < addr {
		return 0, fmt.Errorf("BAR of %#x bytes: the PCI window [%#x, %#x) is full", size, pciMMIOStart, a.end)
	}
	a.next = addr + size
	return addr, nil
}

// pciTransport is what addPCIDevice needs of a PCI function, a
// *virtio.PCI: its configuration space, the registers BAR 0 decodes, the
// doorbells in BAR 0 that KVM should turn into eventfd signals, and how to
// let go of it when the VM is torn down.
type pciTransport interface {
	Function() pci.Function
	ConfigSpace() *pci.ConfigSpace
	BAR() devices.Device
	Notifications() []virtio.Notification
	io.Closer
}

// notifyLen is the width of a virtio queue notification (virtio 1.2
// §4.1.4.4: the driver writes the 16-bit queue index).
const notifyLen = 2

// ioEventer registers KVM ioeventfds; *kvm.VM implements it.
type ioEventer interface {
	IOEventFD(eventFD int, addr uint64, length uint32, pio bool) error
	RemoveIOEventFD(eventFD int, addr uint64, length uint32, pio bool) error
}

// addPCIDevice puts t at device number slot on PCI bus 0, maps its BAR 0 on
// the MMIO bus where its configuration space says, and registers each of its
// notify registers as an ioeventfd there. When the guest moves the BAR, both
// follow. Close unregisters them, then closes t.
func (m *Machine) addPCIDevice(slot uint8, t pciTransport) error {
	cs := t.ConfigSpace()
	bar, ok := cs.BAR(0)
	if !ok {
		return fmt.Errorf("PCI device %d has no BAR 0", slot)
	}
	b := &pciBAR{
		name: fmt.Sprintf("pci 00:%02x.0 BAR 0", slot), size: bar.Size, dev: t.BAR(),
		bus: m.buses.MMIO, kvm: m.kvm, notify: t.Notifications(),
	}
	if err := b.mapAt(bar.Addr); err != nil {
		return errors.Join(err, b.unmap())
	}
	cs.OnRelocate(b.relocate)
	if err := m.pci.Add(slot, t.Function()); err != nil {
		cs.OnRelocate(nil)
		return errors.Join(err, b.unmap())
	}
	m.closers = append(m.closers, closerFunc(func() error { return errors.Join(b.unmap(), t.Close()) }))
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// pciBAR keeps one memory BAR's registers mapped where the guest last put
// them: on the MMIO bus, and its notify registers as ioeventfds.
type pciBAR struct {
	name   string
	size   uint64
	dev    devices.Device
	bus    *devices.Bus
	kvm    ioEventer
	notify []virtio.Notification

	mu     sync.Mutex
	mapped bool   // dev is on the bus at addr
	addr   uint64 // where the guest put the BAR
	events []bool // notify[i] has an ioeventfd at addr+notify[i].Offset
	warned bool   // a failed move was logged
}

// mapAt maps the BAR at addr. If the bus refuses the range (the guest moved
// it onto another device) the BAR stays unmapped until it moves again; a
// notify register KVM refuses still works, through a VM exit to dev.
func (b *pciBAR) mapAt(addr uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addr = addr
	if err := b.bus.Register(addr, b.size, b.name, b.dev); err != nil {
		return err
	}
	b.mapped = true
	b.events = make([]bool, len(b.notify))
	var errs []error
	for i, n := range b.notify {
		err := b.kvm.IOEventFD(n.Kick.FD(), addr+n.Offset, notifyLen, false)
		b.events[i] = err == nil
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unmap takes the BAR off the bus and its ioeventfds out of KVM.
func (b *pciBAR) unmap() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.mapped {
		return nil
	}
	var errs []error
	for i, n := range b.notify {
		if b.events[i] {
			errs = append(errs, b.kvm.RemoveIOEventFD(n.Kick.FD(), b.addr+n.Offset, notifyLen, false))
		}
	}
	errs = append(errs, b.bus.Unregister(b.addr))
	b.mapped, b.events = false, nil
	return errors.Join(errs...)
}

// relocate is the configuration space's RelocateFunc. Guest input decides
// where the BAR goes, so failures are logged (once per device), not fatal.
func (b *pciBAR) relocate(bar int, old, new uint64) {
	if bar != 0 {
		return
	}
	err := errors.Join(b.unmap(), b.mapAt(new))
	if err == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.warned {
		b.warned = true
		slog.Warn("guest moved a PCI BAR where it cannot be fully mapped", "bar", b.name, "from", fmt.Sprintf("%#x", old), "to", fmt.Sprintf("%#x", new), "err", err)
	}
}
