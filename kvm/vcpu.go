package kvm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// VCPU is a KVM vCPU fd and its kvm_run page.
type VCPU struct {
	id   int
	f    *os.File
	run  []byte // struct kvm_run, shared with the kernel
	ring *coalescedRing
}

func (c *VCPU) fd() uintptr { return c.f.Fd() }

// ID is the vCPU's index (and APIC ID).
func (c *VCPU) ID() int { return c.id }

// Close unmaps kvm_run and closes the vCPU fd.
func (c *VCPU) Close() error {
	err := unix.Munmap(c.run)
	c.run = nil
	return errors.Join(err, c.f.Close())
}

// Run enters the guest until the next exit that needs user space. It returns
// ErrInterrupted when a signal or immediate_exit ended it early, and then
// clears immediate_exit. A goroutine stopping the vCPU therefore sets its own
// stop flag before SetImmediateExit(true): whichever order the two stores of
// immediate_exit land in, the loop sees the flag when it re-checks.
//
// KVM_RUN goes through unix.Syscall, not RawSyscall, so the Go scheduler
// knows this thread is blocked in the kernel.
func (c *VCPU) Run() error {
	_, err := ioctl(c.fd(), kvmRun, 0)
	if errors.Is(err, unix.EINTR) {
		storeImmediateExit(c.run, false)
		return ErrInterrupted
	}
	if errors.Is(err, unix.EAGAIN) {
		// An application processor waiting for INIT/SIPI was woken
		// without becoming runnable: nothing to serve, run again.
		return ErrInterrupted
	}
	if err != nil {
		return fmt.Errorf("KVM_RUN: %w", err)
	}
	return nil
}

// SetImmediateExit sets kvm_run.immediate_exit: while on, KVM_RUN returns
// EINTR (ErrInterrupted) before entering the guest. It is safe to call from
// any goroutine until Close; a vCPU already inside KVM_RUN also needs a
// signal to its thread to leave.
func (c *VCPU) SetImmediateExit(on bool) { storeImmediateExit(c.run, on) }

// Regs reads the general-purpose registers.
func (c *VCPU) Regs() (Regs, error) {
	var r Regs
	_, err := ioctlPtr(c.fd(), kvmGetRegs, &r)
	return r, wrap("KVM_GET_REGS", err)
}

// SetRegs writes the general-purpose registers.
func (c *VCPU) SetRegs(r *Regs) error {
	_, err := ioctlPtr(c.fd(), kvmSetRegs, r)
	return wrap("KVM_SET_REGS", err)
}

// Sregs reads the special registers.
func (c *VCPU) Sregs() (Sregs, error) {
	var s Sregs
	_, err := ioctlPtr(c.fd(), kvmGetSregs, &s)
	return s, wrap("KVM_GET_SREGS", err)
}

// SetSregs writes the special registers.
func (c *VCPU) SetSregs(s *Sregs) error {
	_, err := ioctlPtr(c.fd(), kvmSetSregs, s)
	return wrap("KVM_SET_SREGS", err)
}

// FPU reads the x87 and SSE state. KVM_GET_FPU leaves MXCSR zero: the
// kernel copies every field of the FXSAVE area but that one.
func (c *VCPU) FPU() (FPU, error) {
	var f FPU
	_, err := ioctlPtr(c.fd(), kvmGetFPU, &f)
	return f, wrap("KVM_GET_FPU", err)
}

// SetFPU writes the x87 and SSE state.
func (c *VCPU) SetFPU(f *FPU) error {
	_, err := ioctlPtr(c.fd(), kvmSetFPU, f)
	return wrap("KVM_SET_FPU", err)
}

// maxMSRs bounds one KVM_SET_MSRS call.
const maxMSRs = 64

// msrs mirrors struct kvm_msrs with room for maxMSRs entries.
type msrs struct {
	NMSRs, _ uint32
	Entries  [maxMSRs]MSREntry
}

// SetMSRs writes model-specific registers; it fails naming the first one KVM
// refused.
func (c *VCPU) SetMSRs(entries []MSREntry) error {
	if len(entries) > maxMSRs {
		return fmt.Errorf("KVM_SET_MSRS: %d MSRs, at most %d at once", len(entries), maxMSRs)
	}
	m := msrs{NMSRs: uint32(len(entries))}
	copy(m.Entries[:], entries)
	n, err := ioctlPtr(c.fd(), kvmSetMSRs, &m)
	if err != nil {
		return wrap("KVM_SET_MSRS", err)
	}
	if int(n) < len(entries) {
		return fmt.Errorf("KVM_SET_MSRS: KVM refused MSR %#x", entries[n].Index)
	}
	return nil
}

// LAPIC reads the local APIC's registers.
func (c *VCPU) LAPIC() (LAPICState, error) {
	var s LAPICState
	_, err := ioctlPtr(c.fd(), kvmGetLAPIC, &s)
	return s, wrap("KVM_GET_LAPIC", err)
}

// SetLAPIC writes the local APIC's registers.
func (c *VCPU) SetLAPIC(s *LAPICState) error {
	_, err := ioctlPtr(c.fd(), kvmSetLAPIC, s)
	return wrap("KVM_SET_LAPIC", err)
}

// MPState is a vCPU's multiprocessing state (struct kvm_mp_state).
type MPState uint32

// The states x86 vCPUs take (Documentation/virt/kvm/api.rst, KVM_GET_MP_STATE).
const (
	MPRunnable      MPState = 0
	MPUninitialized MPState = 1 // an AP waiting for INIT
	MPInitReceived  MPState = 2 // an AP waiting for SIPI
	MPHalted        MPState = 3
	MPSIPIReceived  MPState = 4
)

func (s MPState) String() string {
	switch s {
	case MPRunnable:
		return "runnable"
	case MPUninitialized:
		return "uninitialized"
	case MPInitReceived:
		return "init-received"
	case MPHalted:
		return "halted"
	case MPSIPIReceived:
		return "sipi-received"
	}
	return fmt.Sprintf("mp-state-%d", uint32(s))
}

// MPState reads whether the vCPU runs, halts or waits for INIT/SIPI.
func (c *VCPU) MPState() (MPState, error) {
	var s MPState
	_, err := ioctlPtr(c.fd(), kvmGetMPState, &s)
	return s, wrap("KVM_GET_MP_STATE", err)
}

// TSCKHz is the guest TSC frequency KVM gives this vCPU.
func (c *VCPU) TSCKHz() (uint32, error) {
	v, err := ioctl(c.fd(), kvmGetTSCKHz, 0)
	return uint32(v), wrap("KVM_GET_TSC_KHZ", err)
}

// Stats opens the vCPU's binary statistics (KVM_GET_STATS_FD).
func (c *VCPU) Stats() (*Stats, error) { return openStats(c.fd(), fmt.Sprintf("vCPU %d", c.id)) }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
