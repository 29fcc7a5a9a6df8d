// Package acpi builds the ACPI tables (ACPI 6.5 specification, chapter 5)
// that describe the machine to the guest: RSDP, XSDT, a hardware-reduced
// FADT, a DSDT with the \_S5 sleep object, the legacy devices and the PCI
// host bridge, and a MADT with every vCPU's local APIC and the I/O APIC.
// Without a MADT the Debian cloud kernel, which has no MP-table parser, sees a
// single CPU.
package acpi

import (
	"encoding/binary"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// Config describes what the tables announce.
type Config struct {
	CPUs             int // one enabled local APIC each, APIC ID = index
	LAPICAddr        uint32
	IOAPICAddr       uint32
	IOAPICID         uint8
	SleepControlPort uint16 // FADT SLEEP_CONTROL_REG, an 8-bit port
	SleepStatusPort  uint16 // FADT SLEEP_STATUS_REG
	ResetPort        uint16 // FADT RESET_REG; 0 for none
	ResetValue       uint8
	HasI8042         bool        // IAPC_BOOT_ARCH 8042 flag
	Devices          []ISADevice // legacy devices the DSDT names
	PCI              *PCIRoot    // the PCI host bridge; nil for none
}

// maxCPUs is what 8-bit xAPIC IDs can name (255 is broadcast).
const maxCPUs = 255

var le = binary.LittleEndian

// Write lays the tables out from base, RSDP first, and returns the RSDP's
// address. Everything must fit below end (the end of the BIOS area).
func Write(ram *memory.RAM, base memory.GuestAddress, cfg Config) (memory.GuestAddress, error) {
	if base%16 != 0 {
		return 0, fmt.Errorf("ACPI tables at %v: the RSDP must be 16-byte aligned", base)
	}
	if cfg.CPUs < 1 || cfg.CPUs > maxCPUs {
		return 0, fmt.Errorf("ACPI tables: %d CPUs, want 1 to %d", cfg.CPUs, maxCPUs)
	}
	for _, d := range cfg.Devices {
		if err := d.validate(); err != nil {
			return 0, err
		}
	}
	if cfg.PCI != nil {
		if err := cfg.PCI.validate(); err != nil {
			return 0, err
		}
	}
	var img image
	img.base = base
	rsdp := img.reserve(rsdpSize)
	dsdt := img.add(dsdtTable(cfg))
	fadt := img.add(fadtTable(cfg, dsdt))
	madt := img.add(madtTable(cfg))
	xsdt := img.add(xsdtTable(fadt, madt))
	copy(img.buf[rsdp-base:], rsdpStruct(xsdt))
	if end := base + memory.GuestAddress(len(img.buf)); end > memory.BIOSEnd {
		return 0, fmt.Errorf("ACPI tables end at %v, past the BIOS area at %v", end, memory.BIOSEnd)
	}
	if err := ram.WriteAt(img.buf, base); err != nil {
		return 0, fmt.Errorf("write ACPI tables: %w", err)
	}
	return rsdp, nil
}

// image accumulates tables at 16-byte aligned guest addresses.
type image struct {
	base memory.GuestAddress
	buf  []byte
}

func (im *image) reserve(n int) memory.GuestAddress {
	for len(im.buf)%16 != 0 {
		im.buf = append(im.buf, 0)
	}
	at := im.base + memory.GuestAddress(len(im.buf))
	im.buf = append(im.buf, make([]byte, n)...)
	return at
}

func (im *image) add(table []byte) memory.GuestAddress {
	at := im.reserve(len(table))
	copy(im.buf[at-im.base:], table)
	return at
}

// checksum makes the bytes of b sum to zero through b[at].
func checksum(b []byte, at int) {
	var sum byte
	for _, c := range b {
		sum += c
	}
	b[at] -= sum
}
