package kvm

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// guestRAM maps size bytes of anonymous memory into vm at guest-physical 0
// and returns the host view of it.
func guestRAM(t *testing.T, vm *VM, size int) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap guest RAM: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Munmap(mem); err != nil {
			t.Error(err)
		}
	})
	if err := vm.SetUserMemoryRegion(0, 0, uint64(size), uintptr(unsafe.Pointer(&mem[0]))); err != nil {
		t.Fatal(err)
	}
	return mem
}
