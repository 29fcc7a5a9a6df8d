package kvm

import "unsafe"

// ringWord is the ring index at byte off of the ring page, for atomic
// access: the page is shared with the kernel, which writes last.
func ringWord(page []byte, off int) *uint32 {
	_ = page[off+3]
	return (*uint32)(unsafe.Pointer(&page[off]))
}
