// Package vcpu runs the guest's virtual CPUs: one goroutine per vCPU, locked
// to the OS thread that created it, looping on KVM_RUN and dispatching the
// exits that reach user space to the port I/O and MMIO buses.
package vcpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/kvm"
)

// Counters count the exits that reached govmm, by kind, and the writes
// that reached it through KVM's coalesced ring (kvm.VCPU.DrainCoalesced).
type Counters struct {
	PIO       atomic.Uint64
	MMIO      atomic.Uint64
	Coalesced atomic.Uint64
}

// Setup is the state a vCPU starts in. Regs and Sregs are set only on the boot
// CPU; the others wait in the in-kernel local APIC for INIT and SIPI.
type Setup struct {
	// SupportedCPUID is KVM's supported set; the vCPU shapes its own table
	// from it (see CPUID) for Count vCPUs.
	SupportedCPUID []kvm.CPUIDEntry
	Count          int
	MSRs           []kvm.MSREntry
	Regs           *kvm.Regs
	// Sregs edits the vCPU's special registers in place (from their reset state).
	Sregs func(*kvm.Sregs)
	// Go, when not nil, holds the vCPU back after it is configured until
	// it is closed, so that the process can be confined (package seccomp)
	// before the guest's first instruction. Stop before closing it ends
	// the vCPU without a single KVM_RUN.
	Go <-chan struct{}
}

// VCPU is one running virtual CPU.
type VCPU struct {
	id    int
	vm    *kvm.VM
	buses Buses

	Counters Counters

	// mu guards cpu and stats: Stop touches the kvm_run page, which Close
	// unmaps, and Stats reads the statistics fd, which the thread closes.
	mu      sync.Mutex
	cpu     *kvm.VCPU
	stats   *kvm.Stats
	noStats error // why stats is nil: KVM has none

	stopping atomic.Bool
	tid      atomic.Int32

	// Snapshot requests, guarded by mu; snapshotWanted says there are some.
	snapshots      []chan snapshotReply
	snapshotWanted atomic.Bool
	ready          chan error
	done           chan<- Result
}

// Result is how a vCPU loop ended: a Stop from the guest, an error, or
// neither when it was asked to stop. Stats are the vCPU's KVM statistics;
// NoStats says why there are none on a KVM without them (kvm.ErrNoStats).
type Result struct {
	ID      int
	Stop    *Stop
	Err     error
	Stats   map[string]uint64
	NoStats error
}

// Start creates vCPU id on a new locked OS thread, configures it and runs it.
// It returns once the vCPU is configured (or failed to be); the loop's Result
// arrives on done, after the vCPU fd is closed.
func Start(vm *kvm.VM, id int, setup Setup, buses Buses, done chan<- Result) (*VCPU, error) {
	v := &VCPU{id: id, vm: vm, buses: buses, ready: make(chan error, 1), done: done}
	go v.thread(setup)
	if err := <-v.ready; err != nil {
		return nil, err
	}
	return v, nil
}

// thread owns the OS thread: the vCPU fd is created, run and closed on it, and
// the thread ends with the goroutine (it is not returned to the Go scheduler).
func (v *VCPU) thread(setup Setup) {
	runtime.LockOSThread()
	v.tid.Store(int32(unix.Gettid()))
	cpu, err := v.vm.CreateVCPU(v.id)
	if err != nil {
		v.ready <- err
		return
	}
	if err := configure(cpu, v.id, setup); err != nil {
		v.ready <- errors.Join(fmt.Errorf("configure vCPU %d: %w", v.id, err), cpu.Close())
		return
	}
	stats, statsErr := cpu.Stats()
	res := Result{ID: v.id}
	res.NoStats, statsErr = noStats(statsErr)
	v.mu.Lock()
	v.cpu = cpu
	v.stats, v.noStats = stats, res.NoStats
	v.mu.Unlock()
	v.ready <- nil
	if setup.Go != nil {
		<-setup.Go
	}
	res.Stop, res.Err = v.loop(cpu)
	if stats != nil {
		v.mu.Lock()
		res.Stats, statsErr = stats.Read()
		statsErr = errors.Join(statsErr, stats.Close())
		v.stats = nil
		v.mu.Unlock()
	}
	if statsErr != nil && res.Err == nil {
		res.Err = fmt.Errorf("vCPU %d statistics: %w", v.id, statsErr)
	}
	v.setCPU(nil)
	if err := cpu.Close(); err != nil && res.Err == nil {
		res.Err = err
	}
	v.done <- res
}

// noStats splits the error of opening a vCPU's statistics into the reason a
// KVM has none, which a run does without, and a real failure.
func noStats(err error) (unavailable, fail error) {
	if errors.Is(err, kvm.ErrNoStats) {
		return err, nil
	}
	return nil, err
}

// errNotRunning is returned by Stats and Snapshot once the vCPU has ended.
// Unexported: callers learn that the VM is not running from the package
// that runs it (govmm.ErrNotRunning), not from each vCPU.
var errNotRunning = errors.New("vCPU is not running")

// Stats reads the vCPU's KVM statistics while it runs; on a KVM without
// them, the error wraps kvm.ErrNoStats.
func (v *VCPU) Stats() (map[string]uint64, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.noStats != nil {
		return nil, v.noStats
	}
	if v.stats == nil {
		return nil, errNotRunning
	}
	return v.stats.Read()
}

func (v *VCPU) loop(cpu *kvm.VCPU) (*Stop, error) {
	apply := v.applyCoalesced // once, not a closure per exit
	for !v.stopping.Load() {
		err := cpu.Run()
		if errors.Is(err, kvm.ErrInterrupted) {
			// Only here is the guest state consistent: an I/O exit is
			// complete once KVM_RUN has been entered again.
			v.serveSnapshots(cpu)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("vCPU %d: %w", v.id, err)
		}
		// Writes KVM coalesced came before this exit's access, from
		// any vCPU: a read of 0xCFC must find its 0xCF8 latched.
		n, err := cpu.DrainCoalesced(apply)
		if err != nil {
			return nil, fmt.Errorf("vCPU %d: %w", v.id, err)
		}
		if n > 0 {
			v.Counters.Coalesced.Add(uint64(n))
		}
		stop, err := handleExit(cpu.Exit(), v.buses, &v.Counters)
		if stop != nil || err != nil {
			if err != nil {
				err = fmt.Errorf("vCPU %d: %w", v.id, err)
			}
			return stop, err
		}
	}
	return nil, nil
}

// applyCoalesced serves one write from KVM's coalesced ring.
func (v *VCPU) applyCoalesced(w kvm.CoalescedWrite) {
	if w.PIO {
		v.buses.PIO.Write(w.Addr, w.Data)
	} else {
		v.buses.MMIO.Write(w.Addr, w.Data)
	}
}

// Stop asks the vCPU to leave KVM_RUN and end its loop. It does not wait.
func (v *VCPU) Stop() {
	if v.stopping.Swap(true) {
		return
	}
	// immediate_exit covers a vCPU about to enter KVM_RUN; the signal one
	// already inside it. Any handled signal ends KVM_RUN with EINTR; SIGURG is
	// the Go runtime's own and harmless to it.
	v.mu.Lock()
	if v.cpu != nil {
		v.cpu.SetImmediateExit(true)
	}
	v.mu.Unlock()
	//nolint:errcheck // ESRCH means the thread has already exited: nothing to kick.
	unix.Tgkill(unix.Getpid(), int(v.tid.Load()), unix.SIGURG)
}

// setCPU publishes cpu, or nil once the loop has ended: snapshot requests
// still waiting then get errNotRunning.
func (v *VCPU) setCPU(cpu *kvm.VCPU) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cpu = cpu
	if cpu == nil {
		for _, w := range v.snapshots {
			w <- snapshotReply{err: errNotRunning}
		}
		v.snapshots = nil
	}
}
