package pci

import "sync"

// ConfigIOSize is the span of configuration mechanism #1: CONFIG_ADDRESS at
// 0xCF8 and CONFIG_DATA at 0xCFC.
const ConfigIOSize = 8

// CONFIG_ADDRESS fields (PCI 3.0 §3.2.2.3.2, figure 3-2).
const (
	addrEnable   = 1 << 31
	addrWritable = addrEnable | 0x00fffffc // bits 30:24 reserved, 1:0 read as zero
	offsetData   = 4
)

// ConfigIO is configuration mechanism #1, a devices.Device to register at
// port 0xCF8 with size ConfigIOSize. It is safe for concurrent use.
type ConfigIO struct {
	bus *Bus

	mu   sync.Mutex // one CONFIG_ADDRESS latch for all vCPUs, as in hardware
	addr uint32
}

// NewConfigIO returns mechanism #1 for bus b.
func NewConfigIO(b *Bus) *ConfigIO {
	return &ConfigIO{bus: b}
}

// Read serves IN from 0xCF8–0xCFF.
func (c *ConfigIO) Read(offset uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case offset == 0 && len(data) == 4:
		le.PutUint32(data, c.addr)
	case offset >= offsetData && validAccess(offset-offsetData, len(data), 4) && c.addr&addrEnable != 0:
		a, reg := c.target(offset)
		c.bus.ReadConfig(a, reg, data)
	default:
		allOnes(data)
	}
}

// Write serves OUT to 0xCF8–0xCFF. Only a dword write to 0xCF8 latches an
// address: byte writes to 0xCF9 and 0xCFB are other chipset registers
// (reset control, and Linux's outb(0x01, 0xCFB) while probing mechanism #1).
func (c *ConfigIO) Write(offset uint64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case offset == 0 && len(data) == 4:
		c.addr = le.Uint32(data) & addrWritable
	case offset >= offsetData && validAccess(offset-offsetData, len(data), 4) && c.addr&addrEnable != 0:
		a, reg := c.target(offset)
		c.bus.WriteConfig(a, reg, data)
	}
}

// target decodes the latched address for an access at data port offset.
func (c *ConfigIO) target(offset uint64) (BDF, uint16) {
	a := BDF{Bus: uint8(c.addr >> 16), Device: uint8(c.addr>>11) & 0x1f, Function: uint8(c.addr>>8) & 7}
	return a, uint16(c.addr&0xfc) + uint16(offset-offsetData)
}
