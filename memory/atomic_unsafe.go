package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// ErrMisaligned is wrapped by the error for an atomic access at an address
// that is not a multiple of its size.
var ErrMisaligned = errors.New("misaligned atomic guest access")

// casAttempts bounds the retries of StoreUint16Atomic. A compare-and-swap
// fails only when a vCPU wrote the other half of the same 32-bit word in the
// few nanoseconds between the load and the swap; losing this many times in a
// row means the guest is hammering that word on purpose.
const casAttempts = 1024

// LoadUint16Atomic reads the little-endian 16-bit value at addr, which must be
// 2-byte aligned, as one access that a vCPU cannot tear. It is sequentially
// consistent (sync/atomic): no later read of guest memory is performed before
// it, so it is how a device reads an index the driver publishes (virtio 1.2
// §2.7.13.3: read avail.idx, then the ring entries it covers).
func (m *RAM) LoadUint16Atomic(addr GuestAddress) (uint16, error) {
	w, half, err := m.word16(addr)
	if err != nil {
		return 0, err
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], atomic.LoadUint32(w))
	return binary.LittleEndian.Uint16(b[half:]), nil
}

// StoreUint16Atomic writes v little-endian at addr, which must be 2-byte
// aligned, as one access that a vCPU cannot tear. It is sequentially
// consistent and a full barrier: every earlier write to guest memory is
// visible before it, and no later read is performed before it (virtio 1.2
// §2.7.8.2: write the used ring entries, then used.idx). The other two bytes
// of the aligned 32-bit word are left as they are, even if a vCPU writes them
// concurrently.
func (m *RAM) StoreUint16Atomic(addr GuestAddress, v uint16) error {
	w, half, err := m.word16(addr)
	if err != nil {
		return err
	}
	for range casAttempts {
		old := atomic.LoadUint32(w)
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], old)
		binary.LittleEndian.PutUint16(b[half:], v)
		if atomic.CompareAndSwapUint32(w, old, binary.NativeEndian.Uint32(b[:])) {
			return nil
		}
	}
	return fmt.Errorf("atomic store to guest address %v: the neighbouring bytes changed on each of %d attempts", addr, casAttempts)
}

// word16 returns the aligned 32-bit word that holds the 16-bit value at addr,
// and the value's byte offset in it. Go has no 16-bit atomics; a 32-bit word
// is always inside the same region, because regions start and end on page
// boundaries.
func (m *RAM) word16(addr GuestAddress) (*uint32, int, error) {
	if addr%2 != 0 {
		return nil, 0, fmt.Errorf("16-bit access at guest address %v: %w", addr, ErrMisaligned)
	}
	s, err := m.Slice(addr&^3, 4)
	if err != nil {
		return nil, 0, &AddressError{Addr: addr, Len: 2}
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	if uintptr(p)%4 != 0 {
		// Unreachable: mappings are page-aligned on the host too.
		return nil, 0, fmt.Errorf("host address %#x behind guest address %v: %w", uintptr(p), addr, ErrMisaligned)
	}
	return (*uint32)(p), int(addr & 2), nil
}
