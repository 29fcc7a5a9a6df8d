package govmm

import (
	"fmt"
	"strings"

	"github.com/govmm/govmm/internal/machine"
)

// IOMode says how a disk's reads and writes reach its image.
type IOMode int

const (
	// IOAuto is IOInline for an image on a memory file system (tmpfs,
	// ramfs), IOUring for any other.
	IOAuto IOMode = iota
	// IOUring submits reads and writes to io_uring, so the kernel's own
	// threads wait for the disk. Its rings are made when the VM is built
	// and restricted to the image, which needs Linux 5.10: where the host
	// cannot, New fails (IOAuto makes blocking calls instead).
	IOUring
	// IOBlocking makes blocking preadv and pwritev calls, one goroutine per
	// queue.
	IOBlocking
	// IOInline makes the same calls without entering the Go scheduler's
	// system call state: for an image whose pages are in memory.
	IOInline
)

func (m IOMode) String() string {
	if mm, ok := m.machine(); ok {
		return mm.String()
	}
	return fmt.Sprintf("IOMode(%d)", int(m))
}

// machine is the disk device's name for m; false for a mode govmm lacks.
func (m IOMode) machine() (machine.IOMode, bool) {
	switch m {
	case IOAuto:
		return machine.IOAuto, true
	case IOUring:
		return machine.IOUring, true
	case IOBlocking:
		return machine.IOBlocking, true
	case IOInline:
		return machine.IOInline, true
	}
	return 0, false
}

// UnhandledAccess counts guest accesses to a port or address with no
// device. Addr is ^0 for the accesses past the tracking limit.
type UnhandledAccess struct {
	Addr  uint64 `json:"addr"`
	Write bool   `json:"write"`
	Count uint64 `json:"count"`
}

// QueueStats is what one virtqueue served: the guest's notifications
// (kicks), the descriptor chains govmm completed, the interrupts it sent,
// and the chains it refused as malformed and gave back unused (a transmit
// frame whose header asks for an offload the driver did not negotiate).
type QueueStats struct {
	Kicks      uint64 `json:"kicks"`
	Chains     uint64 `json:"chains"`
	Interrupts uint64 `json:"interrupts"`
	Dropped    uint64 `json:"dropped"`
}

// VCPUState is where a vCPU was when asked: enough to tell a guest that
// halts waiting for an interrupt from one that spins, and where.
type VCPUState struct {
	ID int
	// MPState is KVM's multiprocessing state: "runnable", "halted",
	// "uninitialized" (an AP waiting for INIT), ...
	MPState             string
	Regs                Regs
	CR0, CR3, CR4, EFER uint64
	// Requested and InService are the vectors the local APIC holds in its
	// IRR and ISR.
	Requested, InService []int
}

// Regs are a vCPU's general-purpose registers.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

func (s VCPUState) String() string {
	r := s.Regs
	return fmt.Sprintf("vCPU %d: %s rip=%#x rsp=%#x rflags=%#x cr0=%#x cr3=%#x cr4=%#x efer=%#x irr=%s isr=%s\n"+
		"  rax=%#x rbx=%#x rcx=%#x rdx=%#x rsi=%#x rdi=%#x rbp=%#x",
		s.ID, s.MPState, r.RIP, r.RSP, r.RFLAGS, s.CR0, s.CR3, s.CR4, s.EFER, vectors(s.Requested), vectors(s.InService),
		r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RBP)
}

func vectors(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprintf("%#x", n)
	}
	return "[" + strings.Join(s, " ") + "]"
}
