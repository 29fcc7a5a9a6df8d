package pci

import (
	"fmt"
	"sync"
)

// numDevices is the number of device numbers on a bus (PCI 3.0 §3.2.2.3.2).
const numDevices = 32

// BDF names a function by bus, device and function number.
type BDF struct {
	Bus, Device, Function uint8
}

func (a BDF) String() string {
	return fmt.Sprintf("%02x:%02x.%x", a.Bus, a.Device, a.Function)
}

// Function is one PCI function's configuration space as the bus sees it. reg
// is the register offset, len(data) 1, 2 or 4; an invalid access reads as
// all ones and writes nothing. *ConfigSpace is one; a transport that must act
// on configuration writes wraps it.
type Function interface {
	ReadConfig(reg uint16, data []byte)
	WriteConfig(reg uint16, data []byte)
}

// Bus is PCI bus 0 with function 0 of each of its 32 devices; the host bridge
// is device 0. It is safe for concurrent use.
type Bus struct {
	mu    sync.RWMutex
	slots [numDevices]Function
}

// NewBus returns a bus holding only the host bridge, at 00:00.0.
func NewBus() *Bus {
	b := &Bus{}
	b.slots[0] = NewHostBridge()
	return b
}

// Host bridge identity. 8086:0d57 is the ID Cloud Hypervisor gives its
// virtual host bridge. An Intel vendor ID passes Linux's sanity check of
// mechanism #1 (arch/x86/pci/direct.c) even before the class is read, and it
// names no real chipset, so no chipset quirk or driver (intel-agp, EDAC)
// expects registers we lack, as they would for i440FX 8086:1237 or Q35 8086:29c0.
const (
	hostBridgeVendor = 0x8086
	hostBridgeDevice = 0x0d57
	classHostBridge  = 0x060000 // bridge, host bridge (PCI Code and ID Assignment spec)
)

// NewHostBridge returns the configuration space of a host bridge with no BARs.
func NewHostBridge() *ConfigSpace {
	return NewConfigSpace(Header{VendorID: hostBridgeVendor, DeviceID: hostBridgeDevice, ClassCode: classHostBridge})
}

// Add puts f at function 0 of device dev. The composition root picks dev; the
// bus only rejects a number past 31 and one already taken.
func (b *Bus) Add(dev uint8, f Function) error {
	if dev >= numDevices || f == nil {
		return fmt.Errorf("add PCI device %d: %w", dev, ErrBadSlot)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.slots[dev] != nil {
		return fmt.Errorf("add PCI device %d: %w", dev, ErrSlotInUse)
	}
	b.slots[dev] = f
	return nil
}

// function returns the function at a, or nil if there is none.
func (b *Bus) function(a BDF) Function {
	if a.Bus != 0 || a.Function != 0 || a.Device >= numDevices {
		return nil
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.slots[a.Device]
}

// ReadConfig reads a function's configuration space. A missing function reads
// as all ones, so its vendor ID is 0xffff and a scan passes over it.
func (b *Bus) ReadConfig(a BDF, reg uint16, data []byte) {
	f := b.function(a)
	if f == nil {
		allOnes(data)
		return
	}
	f.ReadConfig(reg, data)
}

// WriteConfig writes a function's configuration space; writes to a missing
// function are dropped.
func (b *Bus) WriteConfig(a BDF, reg uint16, data []byte) {
	if f := b.function(a); f != nil {
		f.WriteConfig(reg, data)
	}
}
