package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr issues a KVM ioctl whose argument points at v, a mirrored struct.
// The conversion happens in the call expression so v stays alive and in place
// for the duration of the system call.
func ioctlPtr[T any](fd, req uintptr, v *T) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(v)))
		if retry(req, errno) {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return r, nil
	}
}
