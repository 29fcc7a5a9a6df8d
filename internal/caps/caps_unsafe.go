// Package caps drops every Linux capability of the process, on every thread:
// what govmm does once its devices are open, since nothing after needs one.
package caps

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrOneThread says the capabilities could be dropped on the calling thread
// only: a cgo build, where Go cannot reach every thread.
var ErrOneThread = errors.New("capabilities are dropped on one thread only: this govmm was built with cgo, where Go cannot reach every thread (build it with CGO_ENABLED=0, as make build does)")

// DropAll empties every capability set of every thread (effective,
// permitted, inheritable, ambient) and, where the process may (CAP_SETPCAP),
// the bounding set, so that no later exec could regain one either.
// Capabilities belong to each thread, so each change is made on all of Go's
// at once; where that is impossible (cgo) the calling thread still drops
// its own and ErrOneThread says so.
func DropAll() error {
	// On the heap, which does not move, since the calls below take them
	// as plain numbers.
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := new([2]unix.CapUserData)
	if err := unix.Capget(hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	oneThread := false
	if data[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := 0; ; c++ {
			err := allThreads(&oneThread, unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0)
			if errors.Is(err, unix.EINVAL) { // past the kernel's last capability
				break
			}
			if err != nil {
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
			}
		}
	}
	if err := allThreads(&oneThread, unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	*data = [2]unix.CapUserData{}
	err := allThreads(&oneThread, unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0])))
	runtime.KeepAlive(hdr)
	runtime.KeepAlive(data)
	if err != nil {
		return fmt.Errorf("capset to none: %w", err)
	}
	if oneThread {
		return ErrOneThread
	}
	return nil
}

// allThreads makes a call on every thread, or where Go cannot (cgo) on the
// calling one, noting that in oneThread.
func allThreads(oneThread *bool, nr uintptr, args ...uintptr) error {
	var a [3]uintptr
	copy(a[:], args)
	if !*oneThread {
		_, _, errno := syscall.AllThreadsSyscall(nr, a[0], a[1], a[2])
		if errno != syscall.ENOTSUP {
			if errno != 0 {
				return errno
			}
			return nil
		}
		*oneThread = true
	}
	_, _, errno := unix.Syscall(nr, a[0], a[1], a[2])
	if errno != 0 {
		return errno
	}
	return nil
}
