package vcpu

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/kvm"
)

// Snapshot is where a vCPU was when asked: enough to tell a guest that halts
// waiting for an interrupt from one that spins, and where.
type Snapshot struct {
	ID                  int
	MP                  kvm.MPState
	Regs                kvm.Regs
	CR0, CR3, CR4, EFER uint64
	// Requested and InService are the vectors the local APIC holds in its
	// IRR and ISR.
	Requested, InService []int
}

// lapicIRR and lapicISR are the first of the eight 32-bit registers of each
// bitmap, 16 bytes apart (Intel SDM vol. 3A, 11.8.4).
const (
	lapicISR       = 0x100
	lapicIRR       = 0x200
	lapicBitmapGap = 0x10
)

// Snapshot asks the vCPU thread for its state: a signal and immediate_exit
// take it out of KVM_RUN, it reads its registers and goes back in. It gives
// up when ctx ends, e.g. for a vCPU stuck inside the kernel.
func (v *VCPU) Snapshot(ctx context.Context) (Snapshot, error) {
	reply := make(chan snapshotReply, 1)
	v.mu.Lock()
	if v.cpu == nil {
		v.mu.Unlock()
		return Snapshot{}, errNotRunning
	}
	v.snapshots = append(v.snapshots, reply)
	v.snapshotWanted.Store(true)
	v.cpu.SetImmediateExit(true)
	v.mu.Unlock()
	//nolint:errcheck // ESRCH: the thread has ended; ctx bounds the wait.
	unix.Tgkill(unix.Getpid(), int(v.tid.Load()), unix.SIGURG)
	select {
	case r := <-reply:
		return r.s, r.err
	case <-ctx.Done():
		return Snapshot{}, fmt.Errorf("vCPU %d did not leave KVM_RUN: %w", v.id, ctx.Err())
	}
}

type snapshotReply struct {
	s   Snapshot
	err error
}

// serveSnapshots answers the Snapshot calls waiting, on the vCPU thread
// between two KVM_RUNs. immediate_exit is cleared first, so a request that
// comes after the clear still finds it set, and Stop's is kept.
func (v *VCPU) serveSnapshots(cpu *kvm.VCPU) {
	if !v.snapshotWanted.Load() {
		return
	}
	v.mu.Lock()
	if !v.stopping.Load() {
		cpu.SetImmediateExit(false)
	}
	v.snapshotWanted.Store(false)
	waiting := v.snapshots
	v.snapshots = nil
	v.mu.Unlock()
	s, err := v.snapshot(cpu)
	for _, w := range waiting {
		w <- snapshotReply{s, err}
	}
}

func (v *VCPU) snapshot(cpu *kvm.VCPU) (Snapshot, error) {
	s := Snapshot{ID: v.id}
	var errs []error
	var err error
	s.MP, err = cpu.MPState()
	errs = append(errs, err)
	s.Regs, err = cpu.Regs()
	errs = append(errs, err)
	sregs, err := cpu.Sregs()
	errs = append(errs, err)
	s.CR0, s.CR3, s.CR4, s.EFER = sregs.CR0, sregs.CR3, sregs.CR4, sregs.EFER
	lapic, err := cpu.LAPIC()
	errs = append(errs, err)
	s.Requested, s.InService = bitmapVectors(&lapic, lapicIRR), bitmapVectors(&lapic, lapicISR)
	return s, errors.Join(errs...)
}

// bitmapVectors lists the vectors set in the 256-bit APIC bitmap at base.
func bitmapVectors(l *kvm.LAPICState, base int) []int {
	var out []int
	for i := 0; i < 8; i++ {
		word := l.Reg(base + i*lapicBitmapGap)
		for b := 0; b < 32; b++ {
			if word&(1<<b) != 0 {
				out = append(out, i*32+b)
			}
		}
	}
	return out
}
