package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A forbidden call raises SIGSYS on the thread that made it, which may hold
// any lock of the Go runtime: the handler is a few instructions of
// assembly that write a message prepared here and exit, with no Go code,
// allocation or lock on the way.

// maxNr bounds the table: x86-64 system call numbers are below it.
const maxNr = 512

// message is one prepared line: its bytes and length.
type message struct {
	p *byte
	n uintptr
}

var (
	// messages[nr] is the line for call nr; messages[maxNr] for any other.
	messages [maxNr + 1]message
	// keep holds the lines' bytes for as long as the process lives.
	keep []string
	// exitStatus is the reporter's exit status.
	exitStatus uintptr
)

// reportSIGSYS and restore are in reporter_amd64.s; their ABI0 addresses
// come from sigsysPC and restorePC, since a Go function value would name
// a wrapper that needs a goroutine, which a signal handler does not have.
func reportSIGSYS()
func restore()
func sigsysPC() uintptr
func restorePC() uintptr

// sigactiont mirrors the kernel's struct sigaction on x86-64.
type sigactiont struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	saSiginfo  = 0x4
	saRestorer = 0x04000000
	saOnstack  = 0x08000000 // Go gives every thread a signal stack
)

// armReporter prepares every message and installs the SIGSYS handler.
func armReporter(status int) error {
	keep = keep[:0]
	for nr := 0; nr <= maxNr; nr++ {
		var s string
		if nr == maxNr {
			s = line("a system call outside the x86-64 table")
		} else {
			s = line(fmt.Sprintf("system call %d (%s)", nr, Name(nr)))
		}
		keep = append(keep, s)
		messages[nr] = message{p: unsafe.StringData(s), n: uintptr(len(s))}
	}
	exitStatus = uintptr(status)
	act := sigactiont{
		handler:  sigsysPC(),
		flags:    saSiginfo | saOnstack | saRestorer,
		restorer: restorePC(),
		mask:     ^uint64(0), // nothing interrupts the report
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGSYS),
		uintptr(unsafe.Pointer(&act)), 0, unsafe.Sizeof(act.mask), 0, 0)
	if errno != 0 {
		return fmt.Errorf("seccomp: install the SIGSYS handler: %w", errno)
	}
	return nil
}

func line(what string) string {
	return "govmm: seccomp: " + what + " is not allowed once the VM runs: " +
		"govmm stops at once. A bug in govmm or a guest exploiting one: " +
		"please report it with this line (README, Security). " +
		"--seccomp=off runs without the filter, unsafely.\n"
}
