// Package memory owns guest RAM: the host mappings that back it, the
// guest-physical address type, the e820 layout the guest is told about, and
// bounds-checked access by (address, length). No other package turns a guest
// address into host memory.
package memory

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// GuestAddress is a guest-physical address.
type GuestAddress uint64

func (a GuestAddress) String() string { return fmt.Sprintf("%#x", uint64(a)) }

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30

	// PageSize is the granularity KVM maps guest memory at.
	PageSize = 4 * KiB

	// LowRAMTop is where RAM below 4 GiB ends: 3 GiB to 4 GiB stays free for
	// PCI BARs, the IOAPIC, the local APICs and KVM's TSS.
	LowRAMTop GuestAddress = 3 * GiB
	// HighRAMStart is where RAM that does not fit below the hole continues.
	HighRAMStart GuestAddress = 4 * GiB
	// DeviceHoleStart..DeviceHoleEnd is the 32-bit window for devices.
	DeviceHoleStart = LowRAMTop
	DeviceHoleEnd   = HighRAMStart

	// EBDAStart..BIOSEnd is the legacy BIOS area, backed by RAM but reported
	// reserved; firmware tables such as ACPI live there.
	EBDAStart GuestAddress = 0x9fc00
	BIOSEnd   GuestAddress = 0x100000

	// hugePage is the alignment that lets KVM use 2 MiB nested pages.
	hugePage = 2 * MiB
)

// ErrOutOfRange is wrapped by every error for an access outside guest RAM.
var ErrOutOfRange = errors.New("outside guest RAM")

// AddressError names the access that fell outside guest RAM.
type AddressError struct {
	Addr GuestAddress
	Len  uint64
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("guest access [%v, +%#x) is outside guest RAM", e.Addr, e.Len)
}

func (e *AddressError) Unwrap() error { return ErrOutOfRange }

// region is one contiguous run of guest-physical RAM and its host mapping.
type region struct {
	start GuestAddress
	mem   []byte // the aligned part of the mapping that backs the region
	raw   []byte // the whole mapping, for munmap
}

func (r *region) end() GuestAddress { return r.start + GuestAddress(len(r.mem)) }

// RAM is the guest's memory. Its methods are safe for concurrent use: the
// layout never changes after New, and the bytes are the guest's to race on.
type RAM struct {
	regions     []*region
	size        uint64
	hugePageErr error
}

// HugePages reports why the host did not agree to back guest RAM with
// transparent huge pages (the first region it refused), or nil if it did.
func (m *RAM) HugePages() error { return m.hugePageErr }

// New maps size bytes of guest RAM: up to LowRAMTop from address 0, the rest
// from HighRAMStart. size must be a positive multiple of the page size.
func New(size uint64) (*RAM, error) { return newRAM(size, adviseHugePages) }

// adviseHugePages asks the host to back mem with transparent huge pages.
// A host with them turned off still accepts the advice, so its setting is
// read too.
func adviseHugePages(mem []byte) error {
	if err := unix.Madvise(mem, unix.MADV_HUGEPAGE); err != nil {
		return err
	}
	return thpTurnedOff(thpEnabled)
}

// thpEnabled is the host's transparent huge page mode, e.g.
// "always [madvise] never" (Documentation/admin-guide/mm/transhuge.rst).
const thpEnabled = "/sys/kernel/mm/transparent_hugepage/enabled"

// thpTurnedOff says so if the mode file at path selects never. A file that
// cannot be read says nothing: madvise has accepted the advice.
func thpTurnedOff(path string) error {
	mode, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(mode), "[never]") {
		return nil
	}
	return fmt.Errorf("transparent huge pages are turned off (%s is never; echo madvise into it as root)", path)
}

func newRAM(size uint64, advise func([]byte) error) (*RAM, error) {
	if size == 0 || size%PageSize != 0 {
		return nil, fmt.Errorf("guest memory size %d is not a positive multiple of %d bytes", size, PageSize)
	}
	low := min(size, uint64(LowRAMTop))
	m := &RAM{size: size}
	if err := m.add(0, low, advise); err != nil {
		return nil, err
	}
	if size > low {
		if err := m.add(HighRAMStart, size-low, advise); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

func (m *RAM) add(start GuestAddress, size uint64, advise func([]byte) error) error {
	// Over-map by one huge page so the usable part starts 2 MiB-aligned:
	// otherwise KVM backs the guest with 4 KiB nested pages.
	raw, err := unix.Mmap(-1, 0, int(size+hugePage), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("map %d MiB of guest memory: %w", size/MiB, err)
	}
	// The guest's memory is the guest's: a core dump of govmm must not
	// carry it (nor take gigabytes of disk).
	if err := unix.Madvise(raw, unix.MADV_DONTDUMP); err != nil {
		unix.Munmap(raw)
		return fmt.Errorf("keep guest memory out of core dumps (MADV_DONTDUMP): %w", err)
	}
	off := alignOffset(raw, hugePage)
	mem := raw[off : off+int(size) : off+int(size)]
	// Transparent huge pages are an optimisation: a host without them runs
	// the guest on 4 KiB pages, so the error is recorded, not returned.
	if err := advise(mem); err != nil && m.hugePageErr == nil {
		m.hugePageErr = fmt.Errorf("huge pages for guest RAM at %v: %w", start, err)
	}
	m.regions = append(m.regions, &region{start: start, mem: mem, raw: raw})
	return nil
}

// Close unmaps guest RAM. The RAM must not be used afterwards.
func (m *RAM) Close() error {
	var first error
	for _, r := range m.regions {
		if err := unix.Munmap(r.raw); err != nil && first == nil {
			first = fmt.Errorf("unmap guest memory at %v: %w", r.start, err)
		}
	}
	m.regions = nil
	return first
}

// Size is the total amount of guest RAM in bytes.
func (m *RAM) Size() uint64 { return m.size }

// LowEnd is the end of the RAM below 4 GiB.
func (m *RAM) LowEnd() GuestAddress { return m.regions[0].end() }

// Mapping describes one region for registration with the hypervisor.
type Mapping struct {
	Guest GuestAddress
	Size  uint64
	Host  uintptr
}

// Mappings lists the host mappings that back guest RAM, in address order.
func (m *RAM) Mappings() []Mapping {
	out := make([]Mapping, 0, len(m.regions))
	for _, r := range m.regions {
		out = append(out, Mapping{Guest: r.start, Size: uint64(len(r.mem)), Host: hostAddress(r.mem)})
	}
	return out
}

// Slice returns the host bytes behind [addr, addr+n). The range must lie in one
// region. The slice aliases guest memory: hold it only while serving one request.
func (m *RAM) Slice(addr GuestAddress, n uint64) ([]byte, error) {
	end := uint64(addr) + n
	if end < uint64(addr) {
		return nil, &AddressError{Addr: addr, Len: n}
	}
	for _, r := range m.regions {
		if addr >= r.start && GuestAddress(end) <= r.end() {
			off := uint64(addr - r.start)
			return r.mem[off : off+n : off+n], nil
		}
	}
	return nil, &AddressError{Addr: addr, Len: n}
}

// ReadAt copies len(p) bytes of guest memory at addr into p.
func (m *RAM) ReadAt(p []byte, addr GuestAddress) error {
	s, err := m.Slice(addr, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(p, s)
	return nil
}

// WriteAt copies p into guest memory at addr.
func (m *RAM) WriteAt(p []byte, addr GuestAddress) error {
	s, err := m.Slice(addr, uint64(len(p)))
	if err != nil {
		return err
	}
	copy(s, p)
	return nil
}
