package acpi

import (
	"errors"
	"fmt"
)

// PCIRoot describes the PCI host bridge the DSDT names as \_SB_.PCI0: bus 0
// on configuration mechanism #1, the 32-bit memory window BARs live in, and
// where each device's INTx pins are wired.
type PCIRoot struct {
	// MMIOBase and MMIOSize bound the window the composition root
	// allocates BARs from; Linux assigns BARs the guest moves inside it.
	MMIOBase, MMIOSize uint32
	// Routes become _PRT: one entry per (device, pin) with an interrupt.
	Routes []PCIRoute
}

// PCIRoute wires one INTx pin of a device on bus 0 straight to a global
// system interrupt, level-triggered and active-low (ACPI 6.5, 6.2.13).
type PCIRoute struct {
	Device uint8  // 0 to 31
	Pin    uint8  // 0 = INTA# to 3 = INTD#
	GSI    uint32 // an I/O APIC input
}

// Mechanism #1 ports (PCI 3.0 §3.2.2.3.2): fixed on every PC. The bridge
// consumes them, so its I/O windows go around them, as on QEMU's i440FX and Q35.
const (
	pciConfigPort    = 0xcf8
	pciConfigPortLen = 8
	pciIOHighStart   = 0xd00
)

func (p *PCIRoot) validate() error {
	if p.MMIOSize == 0 || uint64(p.MMIOBase)+uint64(p.MMIOSize) > 1<<32 {
		return fmt.Errorf("PCI memory window [%#x, +%#x): want a non-empty window below 4 GiB", p.MMIOBase, p.MMIOSize)
	}
	if len(p.Routes) > 255 {
		return fmt.Errorf("PCI interrupt routes: %d, at most 255 fit in _PRT", len(p.Routes))
	}
	var errs []error
	for _, r := range p.Routes {
		if r.Device > 31 || r.Pin > 3 {
			errs = append(errs, fmt.Errorf("PCI route for device %d pin %d: want device 0 to 31 and pin 0 (INTA#) to 3 (INTD#)", r.Device, r.Pin))
		}
	}
	return errors.Join(errs...)
}

// pciRootDevice is Device (PCI0) for p.
func pciRootDevice(p *PCIRoot) []byte {
	var body []byte
	body = append(body, amlName("_HID", amlEISAID("PNP0A08"))...) // PCI Express root bridge
	body = append(body, amlName("_CID", amlEISAID("PNP0A03"))...) // PCI root bridge
	body = append(body, amlName("_SEG", amlInteger(0))...)
	body = append(body, amlName("_BBN", amlInteger(0))...)
	body = append(body, amlName("_UID", amlInteger(0))...)
	body = append(body, amlName("_CRS", amlBuffer(pciRootResources(p)))...)
	body = append(body, amlName("_PRT", pciRoutingTable(p.Routes))...)
	return amlDeviceOf("PCI0", body)
}

// pciRootResources is the bridge's _CRS: the bus number it decodes, the
// mechanism #1 ports it consumes, and the windows it forwards to bus 0.
func pciRootResources(p *PCIRoot) []byte {
	var crs []byte
	crs = append(crs, resWordAddress(resTypeBus, 0, 0, 0)...)
	crs = append(crs, resIOPort(pciConfigPort, pciConfigPortLen)...)
	crs = append(crs, resWordAddress(resTypeIO, resIOEntireRange, 0, pciConfigPort-1)...)
	crs = append(crs, resWordAddress(resTypeIO, resIOEntireRange, pciIOHighStart, 0xffff)...)
	crs = append(crs, resDWordMemory(p.MMIOBase, p.MMIOBase+p.MMIOSize-1)...)
	return append(crs, resEndTag, 0)
}

// pciRoutingTable is _PRT in its hardwired form: Source 0 and the GSI as
// Source Index, so no interrupt link devices are needed (ACPI 6.5, 6.2.13).
func pciRoutingTable(routes []PCIRoute) []byte {
	entries := make([][]byte, 0, len(routes))
	for _, r := range routes {
		addr := uint64(r.Device)<<16 | 0xffff // any function of the device
		entries = append(entries, amlPackage(amlInteger(addr), amlInteger(uint64(r.Pin)), amlInteger(0), amlInteger(uint64(r.GSI))))
	}
	return amlPackage(entries...)
}

// Address space resource descriptors (ACPI 6.5, 6.4.3.5).
const (
	resDWordAddr = 0x87 // large item 0x07
	resWordAddr  = 0x88 // large item 0x08

	resTypeMemory = 0
	resTypeIO     = 1
	resTypeBus    = 2

	// General flags: a window the bridge produces (bit 0 clear), positive
	// decode, minimum and maximum address fixed.
	resMinMaxFixed = 1<<2 | 1<<3

	resIOEntireRange  = 3 // _RNG: ISA and non-ISA ports
	resMemReadWrite   = 1 // _RW
	resMemNonCachable = 0 // _MEM, bits 2:1
)

// resWordAddress is a Word Address Space Descriptor for [min, max].
func resWordAddress(typ, typeFlags byte, min, max uint16) []byte {
	d := []byte{resWordAddr, 13, 0, typ, resMinMaxFixed, typeFlags}
	d = le.AppendUint16(d, 0) // granularity
	d = le.AppendUint16(d, min)
	d = le.AppendUint16(d, max)
	d = le.AppendUint16(d, 0) // translation offset
	return le.AppendUint16(d, max-min+1)
}

// resDWordMemory is a DWord Address Space Descriptor for memory [min, max].
func resDWordMemory(min, max uint32) []byte {
	d := []byte{resDWordAddr, 23, 0, resTypeMemory, resMinMaxFixed, resMemNonCachable | resMemReadWrite}
	d = le.AppendUint32(d, 0) // granularity
	d = le.AppendUint32(d, min)
	d = le.AppendUint32(d, max)
	d = le.AppendUint32(d, 0) // translation offset
	return le.AppendUint32(d, max-min+1)
}

// resIOPort is an I/O Port Descriptor (6.4.2.5) for n fixed ports at port.
func resIOPort(port uint16, n uint8) []byte {
	d := []byte{resIO, resIODecode16}
	d = le.AppendUint16(d, port) // minimum
	d = le.AppendUint16(d, port) // maximum
	return append(d, 1, n)       // alignment, length
}
