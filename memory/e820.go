package memory

// E820Type is the type of an e820 entry (ACPI 6.5, 15.1, "Address Range Types").
type E820Type uint32

const (
	E820RAM      E820Type = 1
	E820Reserved E820Type = 2
)

// E820Entry is one range of the guest's physical memory map.
type E820Entry struct {
	Addr GuestAddress
	Size uint64
	Type E820Type
}

// E820 is the memory map the guest is told about: RAM below the EBDA, the
// reserved BIOS area (where ACPI tables live), RAM from 1 MiB to the device
// hole, and RAM above 4 GiB if any.
func (m *RAM) E820() []E820Entry {
	low := m.regions[0]
	out := []E820Entry{{Addr: 0, Size: uint64(EBDAStart), Type: E820RAM}}
	if low.end() > EBDAStart {
		out = append(out, E820Entry{Addr: EBDAStart, Size: uint64(min(low.end(), BIOSEnd) - EBDAStart), Type: E820Reserved})
	}
	if low.end() > BIOSEnd {
		out = append(out, E820Entry{Addr: BIOSEnd, Size: uint64(low.end() - BIOSEnd), Type: E820RAM})
	}
	for _, r := range m.regions[1:] {
		out = append(out, E820Entry{Addr: r.start, Size: uint64(len(r.mem)), Type: E820RAM})
	}
	return out
}
