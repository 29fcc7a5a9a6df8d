package blk

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/internal/rawsys"
)

// vectorIO is preadv, or pwritev if write, of bufs at off on fd. It builds
// the iovecs in *iovecs (rawsys.AppendIovecs), which it keeps for the next
// call. These calls may block on the disk, so unless raw (the image is in
// memory, see IOInline) they go through the Go scheduler.
func vectorIO(fd int, write, raw bool, bufs [][]byte, off int64, iovecs *[]unix.Iovec) (int, error) {
	iov := rawsys.AppendIovecs((*iovecs)[:0], bufs)
	*iovecs = iov
	trap := uintptr(unix.SYS_PREADV)
	if write {
		trap = unix.SYS_PWRITEV
	}
	// The offset goes in two words, low then high; on a 64-bit kernel the
	// low word holds all of it and the high word must be 0.
	call := unix.Syscall6
	if raw {
		call = unix.RawSyscall6
	}
	n, _, errno := call(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)),
		uintptr(off), uintptr(uint64(off)>>32>>32), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
