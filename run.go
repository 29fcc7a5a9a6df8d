package govmm

import (
	"context"
	"errors"
	"fmt"

	"github.com/govmm/govmm/internal/machine"
)

// ExitReason is how a VM ended.
type ExitReason int

const (
	// PoweredOff: the guest powered off (ACPI S5 or a KVM shutdown event).
	PoweredOff ExitReason = iota + 1
	// Rebooted: the guest asked for a reset or reboot.
	Rebooted
	// Crashed: the guest kernel panicked, triple-faulted, or ran into
	// something KVM cannot emulate.
	Crashed
	// Stopped: the caller cancelled the context.
	Stopped
)

func (r ExitReason) String() string {
	switch r {
	case PoweredOff:
		return "powered off"
	case Rebooted:
		return "rebooted"
	case Crashed:
		return "crashed"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// exitReason is the API's name for how the machine ended.
func exitReason(r machine.Reason) ExitReason {
	switch r {
	case machine.PoweredOff:
		return PoweredOff
	case machine.Rebooted:
		return Rebooted
	case machine.Crashed:
		return Crashed
	case machine.Stopped:
		return Stopped
	}
	return 0
}

// UserExits count the exits govmm served itself, by bus, and Coalesced the
// guest's writes to index registers (PCI's 0xCF8, the CMOS 0x70) that KVM
// completed without returning to govmm, which served them at the next exit.
type UserExits struct{ PIO, MMIO, Coalesced uint64 }

// ErrNotRunning is returned by Stats and VCPUSnapshots when Run is not
// running.
var ErrNotRunning = errors.New("VM is not running")

// ErrStatsUnavailable is wrapped by the error of Stats where the host's KVM
// has no binary statistics (KVM_GET_STATS_FD, Linux 5.14+).
var ErrStatsUnavailable = errors.New("KVM statistics are unavailable")

// ErrAlreadyRun is returned by a second call to Run.
var ErrAlreadyRun = errors.New("VM already run: create a new one with New")

// Result says how the VM ended and what it cost.
type Result struct {
	Reason ExitReason
	Detail string // e.g. "triple fault (KVM_EXIT_SHUTDOWN)"

	// KVMStats are the vCPUs' KVM binary statistics, summed (e.g. "exits",
	// "io_exits", "halt_exits").
	KVMStats map[string]uint64
	// KVMStatsUnavailable says why KVMStats is empty where the host's KVM
	// has no binary statistics (KVM_GET_STATS_FD, Linux 5.14+); "" where
	// it has them.
	KVMStatsUnavailable string
	// UserExits count the exits govmm itself served, by bus.
	UserExits UserExits
	// Unhandled lists guest accesses to ports and addresses with no device.
	UnhandledPIO, UnhandledMMIO []UnhandledAccess
	// VirtQueues is what each virtqueue served, as QueueStats returns it.
	VirtQueues map[string]QueueStats
	// ConsoleDropped counts the bytes of console output that Config.Console
	// did not take in time: the guest never waits for the host's output, so
	// a writer that blocks (a full pipe, a stuck terminal) loses them.
	ConsoleDropped uint64
}

// Run starts every vCPU and returns when the guest powers off, resets or
// crashes, when a vCPU fails, or when ctx is cancelled. It releases every
// resource of the VM before it returns.
func (v *VM) Run(ctx context.Context) (Result, error) {
	if v.ran {
		return Result{}, ErrAlreadyRun
	}
	v.ran = true
	r, err := v.m.Run(ctx)
	res := Result{
		Reason:     exitReason(r.Reason),
		Detail:     r.Detail,
		KVMStats:   r.KVMStats,
		UserExits:  UserExits(r.UserExits),
		VirtQueues: v.QueueStats(),

		ConsoleDropped: r.ConsoleDropped,
	}
	if r.NoKVMStats != nil {
		res.KVMStatsUnavailable = r.NoKVMStats.Error()
	}
	for _, u := range r.UnhandledPIO {
		res.UnhandledPIO = append(res.UnhandledPIO, UnhandledAccess(u))
	}
	for _, u := range r.UnhandledMMIO {
		res.UnhandledMMIO = append(res.UnhandledMMIO, UnhandledAccess(u))
	}
	return res, err
}

// Stats returns the KVM statistics summed over vCPUs and the exits govmm has
// served so far, while Run runs: e.g. the cost of a boot up to a point the
// guest reports. Where the host's KVM has no statistics the error wraps
// ErrStatsUnavailable, and UserExits are still counted.
func (v *VM) Stats() (map[string]uint64, UserExits, error) {
	stats, user, err := v.m.Stats()
	return stats, UserExits(user), apiError(err)
}

// VCPUSnapshots returns where each vCPU is, while Run runs: a signal takes
// each out of KVM_RUN for a moment. A vCPU that does not come out before ctx
// ends is reported in the error and left out.
func (v *VM) VCPUSnapshots(ctx context.Context) ([]VCPUState, error) {
	snaps, err := v.m.VCPUSnapshots(ctx)
	var out []VCPUState
	for _, s := range snaps {
		out = append(out, VCPUState{
			ID: s.ID, MPState: s.MP.String(), Regs: Regs(s.Regs),
			CR0: s.CR0, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER,
			Requested: s.Requested, InService: s.InService,
		})
	}
	return out, apiError(err)
}

// QueueStats returns what each virtqueue served so far, keyed by device and
// queue index ("net0.q1" is the first NIC's transmit queue, "disk0.q0" the
// first disk's). Safe to call at any time, also after Close.
func (v *VM) QueueStats() map[string]QueueStats {
	out := map[string]QueueStats{}
	for k, s := range v.m.QueueStats() {
		out[k] = QueueStats(s)
	}
	return out
}

// InRAM reports whether the guest-physical range [addr, addr+n) is guest RAM:
// a vCPU whose CR3 is not has lost its page tables.
func (v *VM) InRAM(addr, n uint64) bool { return v.m.InRAM(addr, n) }

// apiError turns the machine's sentinels into the API's.
func apiError(err error) error {
	switch {
	case errors.Is(err, machine.ErrNotRunning):
		return ErrNotRunning
	case errors.Is(err, machine.ErrNoStats):
		return fmt.Errorf("%w: %v", ErrStatsUnavailable, err)
	}
	return err
}
