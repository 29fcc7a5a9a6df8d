package main

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawPositional is pread or pwrite as a raw system call: the Go runtime
// does not see the thread enter the kernel, so its monitor thread does not
// take the P away and poll every 20 µs while the call blocks. Every such
// poll is a timer interrupt in the guest, and the exits it costs would be
// counted against the VMM.
func rawPositional(fd int, p []byte, off int64, write bool) (int, error) {
	nr := uintptr(unix.SYS_PREAD64)
	if write {
		nr = unix.SYS_PWRITE64
	}
	n, _, errno := unix.RawSyscall6(nr, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), uintptr(off), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
