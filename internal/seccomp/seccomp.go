// Package seccomp confines a govmm process, once its VM is built, to the
// system calls a running VM makes: a BPF filter installed on every thread at
// once, and a SIGSYS handler that names a forbidden call before the process
// exits. The filter is assembled by github.com/elastic/go-seccomp-bpf, which
// also knows each system call's name.
package seccomp

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"

	bpf "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	netbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Rules is what the process may do beyond the calls every running VM makes.
type Rules struct {
	// Ioctls are the request numbers the process issues once the VM is
	// built: KVM's on VM and vCPU fds, the tap's, the terminal's. Any other
	// request is forbidden.
	Ioctls []uint64
	// Files lets the process create, rename and remove files: the CLI's
	// --stats file is replaced whole at each write.
	Files bool
	// Status is the exit status of a process stopped by a forbidden call.
	Status int
}

// ErrUnsupported is returned where the kernel has no seccomp filters.
var ErrUnsupported = errors.New("this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)")

// Install confines every thread of the process to r and to the calls
// allowed.go lists, for good: a thread that makes any other call stops the whole
// process with a message on standard error that names the call, and exit
// status r.Status. Threads started later inherit the filter. It sets
// no_new_privs on every thread first, as the kernel requires of a filter it
// synchronises across threads (unless the process has CAP_SYS_ADMIN).
func Install(r Rules) error {
	if !bpf.Supported() {
		return ErrUnsupported
	}
	if _, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); errno == syscall.ENOTSUP {
		// cgo: this thread only; TSYNC below says if that is not enough.
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("seccomp: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	} else if errno != 0 {
		return fmt.Errorf("seccomp: prctl(PR_SET_NO_NEW_PRIVS) on every thread: %w", errno)
	}
	// The local time zone is read from a file on first use: read it now.
	time.Now().Zone()
	prog, err := program(r)
	if err != nil {
		return err
	}
	if err := armReporter(r.Status); err != nil {
		return err
	}
	return load(prog)
}

// Name is the x86-64 name of system call nr, or "unknown".
func Name(nr int) string {
	if n, ok := arch.X86_64.SyscallNumbers[nr]; ok {
		return n
	}
	return "unknown"
}

// program assembles the filter: forbidden calls trap, the rest is allowed as
// listed, some only with the arguments given.
func program(r Rules) ([]unix.SockFilter, error) {
	names := append([]string(nil), always...)
	if r.Files {
		names = append(names, files...)
	}
	sort.Strings(names)
	conds := conditional()
	for _, req := range dedup(r.Ioctls) {
		conds = append(conds, bpf.NameWithConditions{Name: "ioctl", Conditions: bpf.ArgumentConditions{
			{Argument: 1, Operation: bpf.Equal, Value: req},
		}})
	}
	conds = append(conds, bpf.NameWithConditions{Name: "kill", Conditions: bpf.ArgumentConditions{
		{Argument: 0, Operation: bpf.Equal, Value: uint64(os.Getpid())},
	}})
	p := bpf.Policy{
		DefaultAction: bpf.ActionTrap,
		Syscalls: []bpf.SyscallGroup{{
			Action: bpf.ActionAllow, Names: names, NamesWithCondtions: conds,
		}, {
			// clone3 takes its flags in memory, where a filter cannot
			// see CLONE_THREAD: "not implemented" sends a C library
			// (a cgo build) back to clone, which is checked.
			Action: bpf.ActionErrno | bpf.Action(unix.ENOSYS), Names: []string{"clone3"},
		}},
	}
	insts, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble the filter: %w", err)
	}
	raw, err := netbpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble the filter: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, in := range raw {
		prog[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return prog, nil
}

func dedup(v []uint64) []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	for _, x := range v {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
