package blk

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// vectorIO is preadv, or pwritev if write, of bufs at off on fd. It builds
// the iovecs in *iovecs, which it keeps for the next call: unix.Preadv and
// unix.Pwritev allocate them afresh each time. Every slice in bufs must be
// non-empty.
func vectorIO(fd int, write bool, bufs [][]byte, off int64, iovecs *[]unix.Iovec) (int, error) {
	iov := (*iovecs)[:0]
	for _, b := range bufs {
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	*iovecs = iov
	trap := uintptr(unix.SYS_PREADV)
	if write {
		trap = unix.SYS_PWRITEV
	}
	// The offset goes in two words, low then high; on a 64-bit kernel the
	// low word holds all of it and the high word must be 0.
	n, _, errno := unix.Syscall6(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)),
		uintptr(off), uintptr(uint64(off)>>32>>32), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
