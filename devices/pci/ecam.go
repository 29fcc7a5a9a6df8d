package pci

// ECAMBusSize is the ECAM span of one bus: 32 devices × 8 functions × 4 KiB.
const ECAMBusSize = 1 << 20

const ecamFunctionSize = 4096

// ECAM is the PCI Express enhanced configuration access mechanism (PCIe base
// spec §7.2.2), a devices.Device to register over ECAMBusSize bytes of MMIO
// per bus and announce in an ACPI MCFG table. The offset encodes
// bus<<20 | device<<15 | function<<12 | register.
type ECAM struct {
	bus *Bus
}

// NewECAM returns an ECAM window onto bus b.
func NewECAM(b *Bus) *ECAM {
	return &ECAM{bus: b}
}

// decode splits an ECAM offset; false if the access is not one valid config access.
func (e *ECAM) decode(offset uint64, n int) (Function, uint16, bool) {
	if offset>>20 > 0xff || !validAccess(offset%ecamFunctionSize, n, ecamFunctionSize) {
		return nil, 0, false
	}
	a := BDF{Bus: uint8(offset >> 20), Device: uint8(offset>>15) & 0x1f, Function: uint8(offset>>12) & 7}
	f := e.bus.function(a)
	return f, uint16(offset % ecamFunctionSize), f != nil
}

// Read serves a load from the window. Missing functions read as all ones;
// extended configuration space (from 256) reads as zero, an empty
// extended capability list (PCIe base spec §7.6.2).
func (e *ECAM) Read(offset uint64, data []byte) {
	f, reg, ok := e.decode(offset, len(data))
	switch {
	case !ok:
		allOnes(data)
	case reg >= configSize:
		clear(data)
	default:
		f.ReadConfig(reg, data)
	}
}

// Write serves a store to the window.
func (e *ECAM) Write(offset uint64, data []byte) {
	if f, reg, ok := e.decode(offset, len(data)); ok && reg < configSize {
		f.WriteConfig(reg, data)
	}
}
