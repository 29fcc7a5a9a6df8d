package main

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// blkDiscard issues BLKDISCARD, whose argument is a uint64[2] {offset,
// length} in bytes (linux/fs.h).
func blkDiscard(fd int, off, length uint64) error {
	r := [2]uint64{off, length}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKDISCARD, uintptr(unsafe.Pointer(&r))); errno != 0 {
		return errno
	}
	return nil
}
