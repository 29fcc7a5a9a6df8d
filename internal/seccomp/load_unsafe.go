package seccomp

import (
	"fmt"
	"unsafe"

	bpf "github.com/elastic/go-seccomp-bpf"
	netbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// load installs the policy on every thread. It makes the seccomp call
// itself rather than through the library's LoadFilter, which looks at the
// errno only: with TSYNC the kernel reports a thread it could not
// synchronise (one without no_new_privs) as a positive return value, and
// then installs the filter nowhere.
func load(p bpf.Policy) error {
	insts, err := p.Assemble()
	if err != nil {
		return fmt.Errorf("seccomp: assemble the filter: %w", err)
	}
	raw, err := netbpf.Assemble(insts)
	if err != nil {
		return fmt.Errorf("seccomp: assemble the filter: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, in := range raw {
		prog[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: install the filter: %w", errno)
	}
	if tid != 0 {
		return fmt.Errorf("seccomp: thread %d could not take the filter (it lacks no_new_privs), so no thread has it", tid)
	}
	return nil
}
