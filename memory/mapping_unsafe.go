package memory

import "unsafe"

// hostAddress is the host virtual address of a mapping, for KVM.
func hostAddress(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// alignOffset is how far into b the first align-aligned byte is.
func alignOffset(b []byte, align uintptr) int {
	p := hostAddress(b)
	return int((align - p%align) % align)
}
