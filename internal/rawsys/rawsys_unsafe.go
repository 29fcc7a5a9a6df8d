// Package rawsys makes read, write and writev system calls on non-blocking
// descriptors without telling the Go scheduler. A normal system call first
// enters the runtime's syscall state, which wakes the runtime's monitor
// thread (sysmon) whenever it sleeps because every P is idle: that is, at the
// start of nearly every device request. Each wake-up is a thread switch on a
// host CPU the guest's vCPU may be running on. A call that cannot block does
// not need the scheduler's help, so these skip it.
//
// Only for descriptors opened non-blocking: a call here that blocked would
// hold its P and stall a stop-the-world garbage collection until it returned.
package rawsys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on a non-blocking descriptor.
func Read(fd uintptr, p []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Write is write(2) on a non-blocking descriptor.
func Write(fd uintptr, p []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Writev is writev(2) on a non-blocking descriptor. It builds the iovecs in
// *iovecs, which it keeps for the next call. Empty slices are skipped.
func Writev(fd uintptr, bufs [][]byte, iovecs *[]unix.Iovec) (int, error) {
	iov := (*iovecs)[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	*iovecs = iov
	n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
	clear(iov) // hold no pointers into the buffers between calls
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
