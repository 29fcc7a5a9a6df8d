package machine

import (
	"context"
	"errors"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vcpu"
)

// Reason is how a VM ended; govmm.ExitReason mirrors it.
type Reason int

const (
	PoweredOff Reason = iota + 1
	Rebooted
	Crashed
	Stopped
)

// UserExits count the exits govmm served itself, by bus, and Coalesced the
// guest's writes to index registers (PCI's 0xCF8, the CMOS 0x70) that KVM
// completed without returning to govmm, which served them at the next exit.
type UserExits struct{ PIO, MMIO, Coalesced uint64 }

// Result says how the VM ended and what it cost; the virtqueues' counts are
// QueueStats, which stays valid after Run.
type Result struct {
	Reason   Reason
	Detail   string
	KVMStats map[string]uint64
	// NoKVMStats says why KVMStats is empty on a KVM without binary
	// statistics; it wraps ErrNoStats.
	NoKVMStats    error
	UserExits     UserExits
	UnhandledPIO  []devices.UnhandledAccess
	UnhandledMMIO []devices.UnhandledAccess
	// ConsoleDropped counts the console bytes the host's output did not
	// take in time.
	ConsoleDropped uint64
}

// ErrNoStats is wrapped by Stats's error and Result.NoKVMStats where this
// host's KVM has no binary statistics.
var ErrNoStats = kvm.ErrNoStats

// ErrNotRunning is returned by Stats and VCPUSnapshots when Run is not
// running; govmm turns it into its own govmm.ErrNotRunning.
var ErrNotRunning = errors.New("VM is not running")

// Stats returns the KVM statistics summed over vCPUs and the exits govmm has
// served so far, while Run runs. On a KVM without statistics the error wraps
// ErrNoStats and the exits are still counted.
func (m *Machine) Stats() (map[string]uint64, UserExits, error) {
	m.runningMu.Lock()
	defer m.runningMu.Unlock()
	if len(m.running) == 0 {
		return nil, UserExits{}, ErrNotRunning
	}
	var sum Result
	user := sumUserExits(m.running)
	for _, c := range m.running {
		stats, err := c.Stats()
		if errors.Is(err, ErrNoStats) {
			sum.NoKVMStats = err
			continue
		}
		if err != nil {
			return nil, user, err
		}
		addStats(&sum, vcpu.Result{Stats: stats})
	}
	return sum.KVMStats, user, sum.NoKVMStats
}

// VCPUSnapshots returns where each vCPU is, while Run runs: a signal takes
// each out of KVM_RUN for a moment. A vCPU that does not come out before ctx
// ends is reported in the error and left out.
func (m *Machine) VCPUSnapshots(ctx context.Context) ([]vcpu.Snapshot, error) {
	m.runningMu.Lock()
	cpus := m.running
	m.runningMu.Unlock()
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

// InRAM reports whether the guest-physical range [addr, addr+n) is guest RAM.
func (m *Machine) InRAM(addr, n uint64) bool {
	for _, r := range m.ramMap {
		if addr >= uint64(r.Guest) && addr+n >= addr && addr+n <= uint64(r.Guest)+r.Size {
			return true
		}
	}
	return false
}

// Run starts every vCPU and returns when the guest powers off, resets or
// crashes, when a vCPU fails, or when ctx is cancelled. It releases every
// resource of the VM before it returns. Call it once.
func (m *Machine) Run(ctx context.Context) (res Result, err error) {
	defer func() {
		err = errors.Join(err, m.Close())
		if m.conOut != nil { // counted after Close, which writes out the rest
			res.ConsoleDropped = m.conOut.Dropped()
		}
	}()

	done := make(chan vcpu.Result, m.cfg.CPUs)
	gate := make(chan struct{})
	cpus, err := m.startVCPUs(done, gate)
	if err == nil && m.cfg.Confine != nil {
		err = confine(m.cfg.Confine)
	}
	if err != nil {
		for _, c := range cpus {
			c.Stop()
		}
		close(gate)
		drain(done, len(cpus), &res)
		return res, err
	}
	close(gate)
	m.runningMu.Lock()
	m.running = cpus
	m.runningMu.Unlock()
	stoppers := make([]stopper, len(cpus))
	for i, c := range cpus {
		stoppers[i] = c
	}
	err = supervise(ctx, stoppers, m.events, done, m.eventReason, &res)
	m.runningMu.Lock()
	m.running = nil
	m.runningMu.Unlock()
	res.UserExits = sumUserExits(cpus)
	res.UnhandledPIO = m.buses.PIO.Unhandled()
	res.UnhandledMMIO = m.buses.MMIO.Unhandled()
	return res, err
}

// sumUserExits adds up what each vCPU counted.
func sumUserExits(cpus []*vcpu.VCPU) UserExits {
	var u UserExits
	for _, c := range cpus {
		u.PIO += c.Counters.PIO.Load()
		u.MMIO += c.Counters.MMIO.Load()
		u.Coalesced += c.Counters.Coalesced.Load()
	}
	return u
}

func (m *Machine) startVCPUs(done chan vcpu.Result, gate <-chan struct{}) ([]*vcpu.VCPU, error) {
	cpus := make([]*vcpu.VCPU, 0, m.cfg.CPUs)
	for id := 0; id < m.cfg.CPUs; id++ {
		setup := vcpu.Setup{
			SupportedCPUID: m.cpuid,
			Count:          m.cfg.CPUs,
			Go:             gate,
			MSRs: []kvm.MSREntry{
				{Index: msrMiscEnable, Data: miscEnableFastStr},
				{Index: msrMTRRDefType, Data: mtrrEnableWriteBack},
			},
		}
		if id == 0 {
			setup.Regs, setup.Sregs = entryRegs(m.entry), entrySregs(m.entry)
		}
		c, err := vcpu.Start(m.kvm, id, setup, m.buses, done)
		if err != nil {
			return cpus, err
		}
		cpus = append(cpus, c)
	}
	return cpus, nil
}

func drain(done chan vcpu.Result, n int, res *Result) {
	for i := 0; i < n; i++ {
		addStats(res, <-done)
	}
}

// addStats adds a vCPU's statistics to res, or why it has none.
func addStats(res *Result, r vcpu.Result) {
	if r.NoStats != nil && res.NoKVMStats == nil {
		res.NoKVMStats = r.NoStats
	}
	if len(r.Stats) == 0 {
		return
	}
	if res.KVMStats == nil {
		res.KVMStats = make(map[string]uint64, len(r.Stats))
	}
	for k, n := range r.Stats {
		res.KVMStats[k] += n
	}
}
