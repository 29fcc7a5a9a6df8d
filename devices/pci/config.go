// Package pci owns PCI configuration space (PCI Local Bus Specification 3.0,
// chapter 6): a function's type 0 header with its BARs and capability list,
// the bus of functions behind the host bridge, and the way the guest reaches
// them, configuration mechanism #1 at ports 0xCF8–0xCFF. It moves no device:
// when the guest relocates a BAR it tells the BAR's owner, which moves the
// device's registration.
package pci

import (
	"encoding/binary"
	"errors"
	"sync"
)

// Type 0 header register offsets (PCI 3.0 §6.1, figure 6-1).
const (
	regVendorID          = 0x00
	regDeviceID          = 0x02
	regCommand           = 0x04
	regStatus            = 0x06
	regRevisionID        = 0x08
	regClassCode         = 0x09 // programming interface, sub-class, base class
	regCacheLineSize     = 0x0c
	regHeaderType        = 0x0e
	regBAR0              = 0x10
	regSubsystemVendorID = 0x2c
	regSubsystemID       = 0x2e
	regCapabilitiesPtr   = 0x34
	regInterruptLine     = 0x3c
	regInterruptPin      = 0x3d

	headerSize = 0x40 // the capability list lives after the header
	configSize = 256
)

// Command register bits (PCI 3.0 §6.2.2); only these are writable.
const (
	CommandIO          = 1 << 0
	CommandMemory      = 1 << 1
	CommandBusMaster   = 1 << 2
	CommandParityError = 1 << 6
	CommandSERR        = 1 << 8
	CommandINTxDisable = 1 << 10

	commandWritable = CommandIO | CommandMemory | CommandBusMaster | CommandParityError |
		CommandSERR | CommandINTxDisable
)

// statusCapabilities is status bit 4, "Capabilities List" (PCI 3.0 §6.2.3).
const statusCapabilities = 1 << 4

var le = binary.LittleEndian

// Errors returned while the composition root builds a function or a bus.
var (
	ErrBadBAR    = errors.New("invalid BAR")
	ErrNoSpace   = errors.New("configuration space full")
	ErrNotInCap  = errors.New("not inside a capability body")
	ErrBadSlot   = errors.New("invalid PCI slot")
	ErrSlotInUse = errors.New("PCI slot in use")
)

// Header holds the identity a function shows in its type 0 header.
type Header struct {
	VendorID, DeviceID             uint16
	RevisionID                     uint8
	ClassCode                      uint32 // base class<<16 | sub-class<<8 | programming interface
	SubsystemVendorID, SubsystemID uint16
	InterruptPin                   uint8 // 0 for none, 1–4 for INTA#–INTD#
	InterruptLine                  uint8 // the IRQ routed to the pin; the guest may rewrite it
}

// RelocateFunc is told that the guest moved BAR bar from old to new; for a
// 64-bit BAR, bar is the lower slot. It runs on the vCPU that wrote the BAR,
// after the write took effect, so it may read the ConfigSpace (BAR, Command,
// ReadConfig) but must not write it: writes are serialized with their
// relocations so the owner hears of moves in order.
type RelocateFunc func(bar int, old, new uint64)

// ConfigSpace is one function's 256-byte type 0 configuration space. Bits not
// in the write mask keep their value whatever the guest writes. It is safe for
// concurrent use.
type ConfigSpace struct {
	writeMu sync.Mutex // orders relocations as the writes that caused them

	mu       sync.Mutex
	regs     [configSize]byte
	wmask    [configSize]byte
	bars     [numBARs]barState
	caps     []capability
	relocate RelocateFunc
}

// NewConfigSpace returns a function with header h, no BARs and no capabilities.
func NewConfigSpace(h Header) *ConfigSpace {
	c := &ConfigSpace{}
	le.PutUint16(c.regs[regVendorID:], h.VendorID)
	le.PutUint16(c.regs[regDeviceID:], h.DeviceID)
	c.regs[regRevisionID] = h.RevisionID
	c.regs[regClassCode] = byte(h.ClassCode)
	c.regs[regClassCode+1] = byte(h.ClassCode >> 8)
	c.regs[regClassCode+2] = byte(h.ClassCode >> 16)
	le.PutUint16(c.regs[regSubsystemVendorID:], h.SubsystemVendorID)
	le.PutUint16(c.regs[regSubsystemID:], h.SubsystemID)
	c.regs[regInterruptPin] = h.InterruptPin
	c.regs[regInterruptLine] = h.InterruptLine

	le.PutUint16(c.wmask[regCommand:], commandWritable)
	c.wmask[regCacheLineSize] = 0xff // Linux writes it; it changes nothing here
	c.wmask[regInterruptLine] = 0xff // scratch for the OS (PCI 3.0 §6.2.4)
	return c
}

// OnRelocate sets the function told when the guest moves a BAR.
func (c *ConfigSpace) OnRelocate(f RelocateFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.relocate = f
}

// Command returns the command register, for an owner checking bus mastering
// or INTx disable.
func (c *ConfigSpace) Command() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return le.Uint16(c.regs[regCommand:])
}

// validAccess says whether n bytes at off fit in a space of size bytes as one
// 1-, 2- or 4-byte access that stays inside a dword.
func validAccess(off uint64, n int, size uint64) bool {
	if n != 1 && n != 2 && n != 4 {
		return false
	}
	return off < size && off+uint64(n) <= size && off&3+uint64(n) <= 4
}

func allOnes(data []byte) {
	for i := range data {
		data[i] = 0xff
	}
}

// ReadConfig reads len(data) bytes at register offset reg. An invalid access
// reads as all ones.
func (c *ConfigSpace) ReadConfig(reg uint16, data []byte) {
	if !validAccess(uint64(reg), len(data), configSize) {
		allOnes(data)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	copy(data, c.regs[reg:])
}

// WriteConfig writes the writable bits of data at register offset reg and
// reports a BAR relocation to the owner. An invalid access is ignored.
func (c *ConfigSpace) WriteConfig(reg uint16, data []byte) {
	if !validAccess(uint64(reg), len(data), configSize) {
		return
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()

	c.mu.Lock()
	for i, v := range data {
		o := int(reg) + i
		c.regs[o] = c.regs[o]&^c.wmask[o] | v&c.wmask[o]
	}
	bar, old, moved, ok := c.barWritten(reg, data)
	relocate := c.relocate
	c.mu.Unlock()

	if ok && relocate != nil {
		relocate(bar, old, moved)
	}
}
