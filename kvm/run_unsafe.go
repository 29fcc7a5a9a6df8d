package kvm

import (
	"sync/atomic"
	"unsafe"
)

// storeImmediateExit sets kvm_run.immediate_exit (byte 1) atomically, since
// another goroutine may set it while the vCPU thread clears it. Go has no
// atomic byte store, so it swaps the aligned 32-bit word holding bytes 0–3
// (request_interrupt_window, immediate_exit, padding1), which the mmap keeps
// page-aligned. api.rst, "struct kvm_run".
func storeImmediateExit(run []byte, on bool) {
	if len(run) < minRunSize { // closed vCPU: nothing to stop
		return
	}
	word := (*uint32)(unsafe.Pointer(&run[0]))
	const shift = 8 * runImmediateExit
	var v uint32
	if on {
		v = 1 << shift
	}
	for {
		old := atomic.LoadUint32(word)
		if atomic.CompareAndSwapUint32(word, old, old&^(0xff<<shift)|v) {
			return
		}
	}
}
