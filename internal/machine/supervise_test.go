package machine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// fakeVCPU ends, when stopped, with a Result on done as a real vCPU thread
// would: after it left KVM_RUN.
type fakeVCPU struct {
	mu    sync.Mutex
	stops int
	done  chan<- vcpu.Result
	res   vcpu.Result // what it reports when stopped
}

func (f *fakeVCPU) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops++
	if f.stops == 1 {
		f.done <- f.res
	}
}

func (f *fakeVCPU) stopped() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stops
}

// fakeRAM is guest RAM holding one word: the BIOS warm-reset flag.
type fakeRAM struct{ resetFlag uint16 }

func (r fakeRAM) ReadUint16(addr memory.GuestAddress) (uint16, error) {
	if addr != biosResetFlag {
		return 0, fmt.Errorf("read of %#x, not the reset flag", addr)
	}
	return r.resetFlag, nil
}

// machineRun is one supervised run of n fake vCPUs.
type machineRun struct {
	cpus   []*fakeVCPU
	done   chan vcpu.Result
	events chan devices.Event
	ram    fakeRAM
}

func newRun(n int) *machineRun {
	r := &machineRun{done: make(chan vcpu.Result, n), events: make(chan devices.Event, 1)}
	for id := range n {
		r.cpus = append(r.cpus, &fakeVCPU{done: r.done, res: vcpu.Result{ID: id}})
	}
	return r
}

func (r *machineRun) supervise(ctx context.Context) (Result, error) {
	var res Result
	stoppers := make([]stopper, len(r.cpus))
	for i, c := range r.cpus {
		stoppers[i] = c
	}
	reason := func(e devices.Event) (Reason, string) { return eventReason(r.ram, e) }
	err := supervise(ctx, stoppers, r.events, r.done, reason, &res)
	return res, err
}

// A host kernel without KVM_GET_STATS_FD: the vCPUs say so, the guest
// powers off, and the run is a clean poweroff that says why it has no
// statistics.
func TestSuperviseWithoutKVMStats(t *testing.T) {
	r := newRun(2)
	missing := fmt.Errorf("KVM_GET_STATS_FD of vCPU 0: %w", kvm.ErrNoStats)
	for _, c := range r.cpus {
		c.res.NoStats = missing
	}
	r.cpus[0].res.Stop = &vcpu.Stop{Event: devices.PowerOff, Detail: "system event: shutdown"}
	r.done <- r.cpus[0].res
	r.cpus[0].stops = 1 // it ended by itself
	res, err := r.supervise(context.Background())
	if err != nil || res.Reason != PoweredOff || res.NoKVMStats != missing || res.KVMStats != nil {
		t.Errorf("run = %+v, %v; want a clean poweroff, no statistics and why", res, err)
	}
}
