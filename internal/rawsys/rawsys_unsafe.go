// Package rawsys makes read, write and writev system calls on non-blocking
// descriptors, and short sleeps, without telling the Go scheduler. A normal
// system call first enters the runtime's syscall state, which wakes the
// runtime's monitor thread (sysmon) whenever it sleeps because every P is
// idle: that is, at the start of nearly every device request. Each wake-up is a thread switch on a
// host CPU the guest's vCPU may be running on. A call that cannot block does
// not need the scheduler's help, so these skip it.
//
// Only for descriptors opened non-blocking, and for sleeps of tens of
// microseconds: a call here that blocked would hold its P and stall a
// stop-the-world garbage collection until it returned.
package rawsys

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read is read(2) on a non-blocking descriptor.
func Read(fd uintptr, p []byte) (int, error) {
	for {
		// The pointer is converted in the call's own arguments, which keeps
		// p in place until the call returns (unsafe.Pointer rule 4).
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if errno != unix.EINTR {
			return result(n, errno)
		}
	}
}

// Write is write(2) on a non-blocking descriptor.
func Write(fd uintptr, p []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if errno != unix.EINTR {
			return result(n, errno)
		}
	}
}

// result turns a raw call's return into Go's. The callers retry EINTR, as
// os.File's methods do: a call that does not sleep should never see it, but
// a device that took it for an error would stop serving its queue.
func result(n uintptr, errno unix.Errno) (int, error) {
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Writev is writev(2) on a non-blocking descriptor. It builds the iovecs in
// *iovecs (AppendIovecs), which it keeps for the next call.
func Writev(fd uintptr, bufs [][]byte, iovecs *[]unix.Iovec) (int, error) {
	iov := AppendIovecs((*iovecs)[:0], bufs)
	*iovecs = iov
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)))
		if errno != unix.EINTR {
			clear(iov) // hold no pointers into the buffers between calls
			return result(n, errno)
		}
	}
}

// Nanosleep sleeps for d in nanosleep(2). It holds its P while it sleeps, so
// it is for sleeps of tens of microseconds, which a Go system call would
// spend waking sysmon and time.Sleep would round up to a millisecond.
func Nanosleep(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for {
		// The Go runtime's preemption signals interrupt it; ts holds the rest.
		_, _, errno := unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), uintptr(unsafe.Pointer(&ts)), 0)
		if errno != unix.EINTR {
			return
		}
	}
}
