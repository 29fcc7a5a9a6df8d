package hostile

import (
	"sync/atomic"
	"unsafe"
)

// mmioRead loads n (1, 2, 4 or 8) bytes at off of a mapped BAR with one
// instruction of that width: the device sees exactly the access asked for,
// aligned or not. The caller checks off+n against the mapping.
func mmioRead(b []byte, off, n int) uint64 {
	p := unsafe.Pointer(&b[off])
	switch n {
	case 1:
		return uint64(*(*uint8)(p))
	case 2:
		return uint64(*(*uint16)(p))
	case 4:
		return uint64(atomic.LoadUint32((*uint32)(p)))
	}
	return atomic.LoadUint64((*uint64)(p))
}

// mmioWrite stores the low n bytes of v at off with one instruction.
func mmioWrite(b []byte, off, n int, v uint64) {
	p := unsafe.Pointer(&b[off])
	switch n {
	case 1:
		*(*uint8)(p) = uint8(v)
	case 2:
		*(*uint16)(p) = uint16(v)
	case 4:
		atomic.StoreUint32((*uint32)(p), uint32(v))
	default:
		atomic.StoreUint64((*uint64)(p), v)
	}
}

// virtAddr is where b starts in this process's address space, for
// /proc/self/pagemap.
func virtAddr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
