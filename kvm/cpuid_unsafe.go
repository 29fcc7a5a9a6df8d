package kvm

import "unsafe"

// struct kvm_cpuid2 is { __u32 nent; __u32 padding; struct kvm_cpuid_entry2
// entries[]; }: a header of two words followed by nent entries of ten words.
const (
	cpuid2HeaderWords = 2
	cpuidEntryWords   = int(unsafe.Sizeof(CPUIDEntry{})) / 4
)

// newCPUID2 allocates a struct kvm_cpuid2 with room for n entries and nent
// set to n. Every field is a __u32, so a []uint32 has the right alignment.
func newCPUID2(n int) []uint32 {
	buf := make([]uint32, cpuid2HeaderWords+n*cpuidEntryWords)
	buf[0] = uint32(n)
	return buf
}

// cpuid2View is the entries array of buf, aliasing it, with nent entries.
func cpuid2View(buf []uint32) []CPUIDEntry {
	n := min(int(buf[0]), (len(buf)-cpuid2HeaderWords)/cpuidEntryWords)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*CPUIDEntry)(unsafe.Pointer(&buf[cpuid2HeaderWords])), n)
}

// cpuid2Entries copies the entries out of buf.
func cpuid2Entries(buf []uint32) []CPUIDEntry {
	return append([]CPUIDEntry(nil), cpuid2View(buf)...)
}
