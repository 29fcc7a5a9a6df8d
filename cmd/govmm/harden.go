package main

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// errOneThread says that no_new_privs could be set on one thread only.
var errOneThread = errors.New("no_new_privs is set on one thread only: this govmm was built with cgo, where Go cannot reach every thread (build it with CGO_ENABLED=0, as make build does)")

// hardenProcess is what govmm run asks of the kernel for its own process
// before it opens anything: no privileges gained through exec (setuid or
// file capabilities, for mke2fs and anything after it), and no core dump
// or ptrace by other processes of the same user, since this process holds
// the guest's memory (guest RAM is also marked MADV_DONTDUMP). It is the
// CLI's choice for its own process: a program that embeds govmm decides
// for itself. no_new_privs belongs to each thread, so it is set on all of
// Go's at once; a cgo build, where that is impossible, gets it on this
// thread only and errOneThread, which the caller reports as a warning.
func hardenProcess() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0)
	switch errno {
	case 0:
		return nil
	case syscall.ENOTSUP:
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
		return errOneThread
	}
	return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS) on every thread: %w", errno)
}
