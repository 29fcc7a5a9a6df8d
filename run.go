package govmm

import (
	"context"
	"errors"
	"fmt"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
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

// UserExits count the exits govmm served itself, by bus.
type UserExits struct{ PIO, MMIO uint64 }

// ErrNotRunning is returned by Stats when Run is not running.
var ErrNotRunning = errors.New("VM is not running")

// Stats returns the KVM statistics summed over vCPUs and the exits govmm has
// served so far, while Run runs: e.g. the cost of a boot up to a point the
// guest reports.
func (v *VM) Stats() (map[string]uint64, UserExits, error) {
	v.runningMu.Lock()
	defer v.runningMu.Unlock()
	var user UserExits
	if len(v.running) == 0 {
		return nil, user, ErrNotRunning
	}
	var sum Result
	for _, c := range v.running {
		stats, err := c.Stats()
		if err != nil {
			return nil, user, err
		}
		addStats(&sum, stats)
		user.PIO += c.Counters.PIO.Load()
		user.MMIO += c.Counters.MMIO.Load()
	}
	return sum.KVMStats, user, nil
}

// VCPUSnapshots returns where each vCPU is, while Run runs: a signal takes
// each out of KVM_RUN for a moment. A vCPU that does not come out before ctx
// ends is reported in the error and left out.
func (v *VM) VCPUSnapshots(ctx context.Context) ([]vcpu.Snapshot, error) {
	v.runningMu.Lock()
	cpus := v.running
	v.runningMu.Unlock()
	if len(cpus) == 0 {
		return nil, ErrNotRunning
	}
	var out []vcpu.Snapshot
	var errs []error
	for _, c := range cpus {
		s, err := c.Snapshot(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// InRAM reports whether the guest-physical range [addr, addr+n) is guest RAM:
// a vCPU whose CR3 is not has lost its page tables.
func (v *VM) InRAM(addr, n uint64) bool {
	for _, m := range v.ramMap {
		if addr >= uint64(m.Guest) && addr+n >= addr && addr+n <= uint64(m.Guest)+m.Size {
			return true
		}
	}
	return false
}

// ErrAlreadyRun is returned by a second call to Run.
var ErrAlreadyRun = errors.New("VM already run: create a new one with New")

// Result says how the VM ended and what it cost.
type Result struct {
	Reason ExitReason
	Detail string // e.g. "triple fault (KVM_EXIT_SHUTDOWN)"

	// KVMStats are the vCPUs' KVM binary statistics, summed (e.g. "exits",
	// "io_exits", "halt_exits").
	KVMStats map[string]uint64
	// UserExits count the exits govmm itself served, by bus.
	UserExits UserExits
	// Unhandled lists guest accesses to ports and addresses with no device.
	UnhandledPIO, UnhandledMMIO []devices.UnhandledAccess
	// VirtQueues is what each virtqueue served, as QueueStats returns it.
	VirtQueues map[string]virtio.QueueStats
}

// Run starts every vCPU and returns when the guest powers off, resets or
// crashes, when a vCPU fails, or when ctx is cancelled. It releases every
// resource of the VM before it returns.
func (v *VM) Run(ctx context.Context) (res Result, err error) {
	if v.ran {
		return Result{}, ErrAlreadyRun
	}
	v.ran = true
	defer func() { err = errors.Join(err, v.Close()) }()

	done := make(chan vcpu.Result, v.cfg.CPUs)
	cpus, err := v.startVCPUs(done)
	stopAll := func() {
		for _, c := range cpus {
			c.Stop()
		}
	}
	if err != nil {
		stopAll()
		drain(done, len(cpus), &res)
		return res, err
	}
	v.runningMu.Lock()
	v.running = cpus
	v.runningMu.Unlock()
	err = v.supervise(ctx, cpus, stopAll, done, &res)
	v.runningMu.Lock()
	v.running = nil
	v.runningMu.Unlock()
	for _, c := range cpus {
		res.UserExits.PIO += c.Counters.PIO.Load()
		res.UserExits.MMIO += c.Counters.MMIO.Load()
	}
	res.UnhandledPIO = v.buses.PIO.Unhandled()
	res.UnhandledMMIO = v.buses.MMIO.Unhandled()
	res.VirtQueues = v.QueueStats()
	return res, err
}

// supervise waits for the first reason to stop, stops every vCPU and collects
// their results.
func (v *VM) supervise(ctx context.Context, cpus []*vcpu.VCPU, stopAll func(), done chan vcpu.Result, res *Result) error {
	var errs []error
	remaining := len(cpus)
	stopping := false
	stop := func(reason ExitReason, detail string) {
		if !stopping {
			stopping = true
			res.Reason, res.Detail = reason, detail
			stopAll()
		}
	}
	for remaining > 0 {
		select {
		case <-ctx.Done():
			stop(Stopped, context.Cause(ctx).Error())
		case e := <-v.events:
			stop(v.eventReason(e))
		case r := <-done:
			remaining--
			addStats(res, r.Stats)
			if r.Err != nil {
				errs = append(errs, r.Err)
				stop(Crashed, r.Err.Error())
			}
			if r.Stop != nil {
				reason, _ := v.eventReason(r.Stop.Event)
				stop(reason, r.Stop.Detail)
			}
			// A vCPU that ended with neither was told to stop.
		}
	}
	return errors.Join(errs...)
}

// eventReason maps a guest request to an exit reason. A reset is a crash when
// the guest asked for a warm reboot: only a panic does (see biosResetFlag).
func (v *VM) eventReason(e devices.Event) (ExitReason, string) {
	switch e {
	case devices.PowerOff:
		return PoweredOff, "guest powered off"
	case devices.Crash:
		return Crashed, "guest reported a crash"
	case devices.Reset:
		if flag, err := v.ram.ReadUint16(biosResetFlag); err == nil && flag == warmReboot {
			return Crashed, "guest kernel panicked (it asked for a warm reboot; see reboot=panic_warm)"
		}
		return Rebooted, "guest reset"
	}
	return Crashed, fmt.Sprintf("unknown guest event %d", e)
}

func (v *VM) startVCPUs(done chan vcpu.Result) ([]*vcpu.VCPU, error) {
	cpus := make([]*vcpu.VCPU, 0, v.cfg.CPUs)
	for id := 0; id < v.cfg.CPUs; id++ {
		setup := vcpu.Setup{
			SupportedCPUID: v.cpuid,
			Count:          v.cfg.CPUs,
			MSRs: []kvm.MSREntry{
				{Index: msrMiscEnable, Data: miscEnableFastStr},
				{Index: msrMTRRDefType, Data: mtrrEnableWriteBack},
			},
		}
		if id == 0 {
			setup.Regs, setup.Sregs = entryRegs(v.entry), entrySregs(v.entry)
		}
		c, err := vcpu.Start(v.kvm, id, setup, v.buses, done)
		if err != nil {
			return cpus, err
		}
		cpus = append(cpus, c)
	}
	return cpus, nil
}

func drain(done chan vcpu.Result, n int, res *Result) {
	for i := 0; i < n; i++ {
		addStats(res, (<-done).Stats)
	}
}

func addStats(res *Result, stats map[string]uint64) {
	if len(stats) == 0 {
		return
	}
	if res.KVMStats == nil {
		res.KVMStats = make(map[string]uint64, len(stats))
	}
	for k, n := range stats {
		res.KVMStats[k] += n
	}
}
