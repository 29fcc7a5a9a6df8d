package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// load installs the program on every thread. It makes the seccomp call
// itself rather than through the library's LoadFilter, which looks at the
// errno only: with TSYNC the kernel reports a thread it could not
// synchronise (one without no_new_privs) as a positive return value, and
// then installs the filter nowhere.
func load(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: install the filter: %w", errno)
	}
	if tid != 0 {
		return fmt.Errorf("seccomp: thread %d could not take the filter (it lacks no_new_privs or has a filter of its own), so no thread has it", tid)
	}
	return nil
}
