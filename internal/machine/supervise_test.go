package machine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// fakeVCPU reports its Result on done once, as a vCPU thread does after it
// leaves KVM_RUN: when the guest ends the VM from it (end), or when it is
// stopped (Stop).
type fakeVCPU struct {
	done   chan<- vcpu.Result
	onStop vcpu.Result   // what it reports when stopped
	delay  time.Duration // how long it takes to leave KVM_RUN when stopped

	mu    sync.Mutex
	stops int
	ended bool
}

func (f *fakeVCPU) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stops++
	if f.ended {
		return
	}
	f.ended = true
	res := f.onStop
	go func() {
		time.Sleep(f.delay)
		f.done <- res
	}()
}

// end is the vCPU ending by itself with res.
func (f *fakeVCPU) end(res vcpu.Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = true
	f.done <- res
}

func (f *fakeVCPU) hasEnded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ended
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

// machineRun is one supervised run of fake vCPUs, each reporting
// {"exits": id+1} when stopped.
type machineRun struct {
	cpus   []*fakeVCPU
	done   chan vcpu.Result
	events chan devices.Event
	ram    fakeRAM
}

func newRun(n int) *machineRun {
	r := &machineRun{done: make(chan vcpu.Result, n), events: make(chan devices.Event, 1)}
	for id := range n {
		r.cpus = append(r.cpus, &fakeVCPU{done: r.done, onStop: vcpu.Result{ID: id, Stats: map[string]uint64{"exits": uint64(id + 1)}}})
	}
	return r
}

func (r *machineRun) supervise(t *testing.T, ctx context.Context) (Result, error) {
	t.Helper()
	var res Result
	stoppers := make([]stopper, len(r.cpus))
	for i, c := range r.cpus {
		stoppers[i] = c
	}
	reason := func(e devices.Event) (Reason, string) { return eventReason(r.ram, e) }
	finished := make(chan error, 1)
	go func() { finished <- supervise(ctx, stoppers, r.events, r.done, reason, &res) }()
	select {
	case err := <-finished:
		for i, c := range r.cpus {
			if !c.hasEnded() {
				t.Errorf("vCPU %d never ended", i)
			}
			if c.stopped() == 0 {
				t.Errorf("vCPU %d was not stopped", i)
			}
		}
		return res, err
	case <-time.After(10 * time.Second):
		t.Fatal("supervise did not return")
	}
	return res, nil
}

// The guest powered off through a device: every vCPU is stopped, and every
// vCPU's statistics are in the result, also a vCPU slow to leave KVM_RUN.
func TestSuperviseDeviceEventStopsEveryVCPU(t *testing.T) {
	r := newRun(3)
	r.cpus[2].delay = 50 * time.Millisecond
	r.events <- devices.PowerOff
	res, err := r.supervise(t, context.Background())
	if err != nil || res.Reason != PoweredOff || res.Detail != "guest powered off" {
		t.Errorf("run = %v %q, %v; want a poweroff", res.Reason, res.Detail, err)
	}
	if res.KVMStats["exits"] != 1+2+3 {
		t.Errorf("exits summed to %d, want 6 from the three vCPUs", res.KVMStats["exits"])
	}
}

// A vCPU that fails crashes the VM with its error, which Run returns.
func TestSuperviseVCPUErrorIsACrash(t *testing.T) {
	r := newRun(2)
	failure := errors.New("vCPU 1: KVM could not enter the guest: hardware entry failure reason 0x21")
	r.cpus[1].end(vcpu.Result{ID: 1, Err: failure, Stats: map[string]uint64{"exits": 10}})
	res, err := r.supervise(t, context.Background())
	if !errors.Is(err, failure) || res.Reason != Crashed || res.Detail != failure.Error() {
		t.Errorf("run = %v %q, %v; want Crashed with the vCPU's error", res.Reason, res.Detail, err)
	}
	if res.KVMStats["exits"] != 1+10 {
		t.Errorf("exits summed to %d, want 11", res.KVMStats["exits"])
	}
}

// Cancelling the context stops the VM and says why.
func TestSuperviseCancel(t *testing.T) {
	r := newRun(2)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("received interrupt"))
	res, err := r.supervise(t, ctx)
	if err != nil || res.Reason != Stopped || res.Detail != "received interrupt" {
		t.Errorf("run = %v %q, %v; want Stopped with the cause", res.Reason, res.Detail, err)
	}
}

// The first reason wins: what the other vCPUs report while they stop (a
// reset, an error) does not change it, though an error is still returned.
func TestSuperviseFirstReasonWins(t *testing.T) {
	r := newRun(3)
	late := errors.New("vCPU 2: KVM_RUN: bad address")
	r.cpus[1].onStop.Stop = &vcpu.Stop{Event: devices.Reset, Detail: "system event: reset"}
	r.cpus[2].onStop.Err = late
	r.cpus[0].end(vcpu.Result{ID: 0, Stop: &vcpu.Stop{Event: devices.PowerOff, Detail: "system event: shutdown"}})
	res, err := r.supervise(t, context.Background())
	if res.Reason != PoweredOff || res.Detail != "system event: shutdown" || !errors.Is(err, late) {
		t.Errorf("run = %v %q, %v; want vCPU 0's poweroff and vCPU 2's error", res.Reason, res.Detail, err)
	}
	// A device event after the first reason does not win either.
	r = newRun(1)
	r.cpus[0].onStop.Stop = &vcpu.Stop{Event: devices.Crash, Detail: "system event: crash"}
	r.events <- devices.Reset
	if res, _ := r.supervise(t, context.Background()); res.Reason != Rebooted {
		t.Errorf("reset, then a crash while stopping: %v, want Rebooted", res.Reason)
	}
}

// A guest that asked for a reset, and then triple-faulted before govmm
// stopped it (Linux's fallback when the i8042 reset does not take at
// once), rebooted: the request it made first is the reason, every time,
// whichever of the two the supervisor happens to see first.
func TestSuperviseRequestBeforeTripleFaultWins(t *testing.T) {
	for range 64 {
		r := newRun(1)
		r.events <- devices.Reset
		r.cpus[0].end(vcpu.Result{ID: 0, Stop: &vcpu.Stop{Event: devices.Crash, Detail: "triple fault (KVM_EXIT_SHUTDOWN)"}})
		res, _ := r.supervise(t, context.Background())
		if res.Reason != Rebooted {
			t.Fatalf("reset requested, then a triple fault: %v %q, want Rebooted", res.Reason, res.Detail)
		}
	}
}

// A host kernel without KVM_GET_STATS_FD: the vCPUs say so, the guest
// powers off, and the run is a clean poweroff that says why it has no
// statistics.
func TestSuperviseWithoutKVMStats(t *testing.T) {
	r := newRun(2)
	missing := fmt.Errorf("KVM_GET_STATS_FD of vCPU 0: %w", kvm.ErrNoStats)
	for _, c := range r.cpus {
		c.onStop = vcpu.Result{ID: c.onStop.ID, NoStats: missing}
	}
	r.cpus[0].end(vcpu.Result{NoStats: missing, Stop: &vcpu.Stop{Event: devices.PowerOff, Detail: "system event: shutdown"}})
	res, err := r.supervise(t, context.Background())
	if err != nil || res.Reason != PoweredOff || res.NoKVMStats != missing || res.KVMStats != nil {
		t.Errorf("run = %+v, %v; want a clean poweroff, no statistics and why", res, err)
	}
}

// How each way a guest ends is classified: from a device (ACPI, i8042), or
// from a vCPU's exit as package vcpu turns it into a Stop (its tests pin
// that step), with the BIOS warm-reset flag telling a panic from a reboot.
func TestExitClassification(t *testing.T) {
	for _, tc := range []struct {
		name      string
		event     devices.Event // from a device, or
		stop      *vcpu.Stop    // from a vCPU's exit
		resetFlag uint16
		want      Reason
		detail    string
	}{
		{name: "ACPI poweroff (S5)", event: devices.PowerOff, want: PoweredOff, detail: "powered off"},
		{name: "KVM_SYSTEM_EVENT_SHUTDOWN", stop: &vcpu.Stop{Event: devices.PowerOff, Detail: "system event: shutdown"}, want: PoweredOff, detail: "shutdown"},
		{name: "reboot through the i8042 or ACPI reset", event: devices.Reset, want: Rebooted, detail: "reset"},
		{name: "KVM_SYSTEM_EVENT_RESET", stop: &vcpu.Stop{Event: devices.Reset, Detail: "system event: reset"}, want: Rebooted, detail: "reset"},
		{name: "panic: reset with the warm-reset flag", event: devices.Reset, resetFlag: 0x1234, want: Crashed, detail: "panicked"},
		{name: "panic through KVM's reset event", stop: &vcpu.Stop{Event: devices.Reset, Detail: "system event: reset"}, resetFlag: 0x1234, want: Crashed},
		{name: "reset with another flag (a cold reboot)", event: devices.Reset, resetFlag: 0x0001, want: Rebooted},
		{name: "triple fault (KVM_EXIT_SHUTDOWN)", stop: &vcpu.Stop{Event: devices.Crash, Detail: "triple fault (KVM_EXIT_SHUTDOWN)"}, want: Crashed, detail: "triple fault"},
		{name: "emulation failure (KVM_EXIT_INTERNAL_ERROR)", stop: &vcpu.Stop{Event: devices.Crash, Detail: "KVM internal error, suberror 1 (the guest ran something KVM cannot emulate)"}, want: Crashed, detail: "emulate"},
		{name: "a device reports a crash", event: devices.Crash, want: Crashed, detail: "crash"},
		{name: "unknown event", event: devices.Event(42), want: Crashed, detail: "unknown guest event 42"},
	} {
		r := newRun(2)
		r.ram.resetFlag = tc.resetFlag
		if tc.stop != nil {
			r.cpus[1].end(vcpu.Result{ID: 1, Stop: tc.stop})
		} else {
			r.events <- tc.event
		}
		res, err := r.supervise(t, context.Background())
		if err != nil || res.Reason != tc.want || !strings.Contains(res.Detail, tc.detail) {
			t.Errorf("%s: %v %q, %v; want %v with a detail mentioning %q", tc.name, res.Reason, res.Detail, err, tc.want, tc.detail)
		}
	}
}
