package kvmirq

import (
	"errors"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

// fakeGSIs records what the router asks of KVM.
type fakeGSIs struct {
	tables [][]kvm.RoutingEntry
	irqfds map[uint32]int // GSI -> eventfd
	fail   error          // returned by SetGSIRouting
}

func (f *fakeGSIs) SetGSIRouting(t []kvm.RoutingEntry) error {
	if f.fail != nil {
		return f.fail
	}
	f.tables = append(f.tables, t)
	return nil
}

func (f *fakeGSIs) IRQFD(fd int, gsi uint32) error {
	if f.irqfds == nil {
		f.irqfds = map[uint32]int{}
	}
	f.irqfds[gsi] = fd
	return nil
}

func newTestRouter(t *testing.T) (*MSIRouter, *fakeGSIs) {
	f := &fakeGSIs{}
	r := NewMSIRouter(f, 24)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r, f
}

func TestMSIVectorsGetGSIsAndIRQFDs(t *testing.T) {
	r, f := newTestRouter(t)
	a, err := r.Vectors(2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Vectors(3)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{24, 25, 26, 27, 28}
	got := append(append([]uint32(nil), a.gsis...), b.gsis...)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("GSIs %v, want %v", got, want)
		}
	}
	for i, gsi := range a.gsis {
		if f.irqfds[gsi] != a.fds[i].FD() {
			t.Errorf("GSI %d: irqfd %d, want vector %d's eventfd %d", gsi, f.irqfds[gsi], i, a.fds[i].FD())
		}
	}
	if len(f.tables) != 0 {
		t.Errorf("allocating vectors sent %d routing tables, want none until a route", len(f.tables))
	}
	if _, err := r.Vectors(kvm.MaxGSIRoutes); err == nil {
		t.Error("allocated more vectors than KVM has GSIs")
	}
}

func TestMSIRouteSendsTheWholeTable(t *testing.T) {
	r, f := newTestRouter(t)
	v, err := r.Vectors(3)
	if err != nil {
		t.Fatal(err)
	}
	m1 := devices.MSIMessage{Addr: 0xfee00000, Data: 0x41}
	m2 := devices.MSIMessage{Addr: 0xfee01000, Data: 0x42}
	for _, step := range []struct {
		vector int
		m      devices.MSIMessage
	}{{2, m2}, {0, m1}, {0, m1}} {
		if err := v.Route(step.vector, step.m); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.tables) != 2 {
		t.Fatalf("%d tables sent, want 2: an unchanged route is not re-sent", len(f.tables))
	}
	defaults := kvm.DefaultRoutes()
	last := f.tables[1]
	if len(last) != len(defaults)+2 {
		t.Fatalf("table of %d routes, want KVM's %d defaults and 2 MSIs", len(last), len(defaults))
	}
	for i, d := range defaults {
		if last[i] != d {
			t.Errorf("route %d = %+v, want default %+v", i, last[i], d)
		}
	}
	wantMSI := []kvm.RoutingEntry{
		kvm.MSIRoute{GSI: 24, Addr: m1.Addr, Data: m1.Data},
		kvm.MSIRoute{GSI: 26, Addr: m2.Addr, Data: m2.Data},
	}
	for i, w := range wantMSI {
		if got := last[len(defaults)+i]; got != w {
			t.Errorf("MSI route %d = %+v, want %+v", i, got, w)
		}
	}
	if err := v.Route(3, m1); err == nil {
		t.Error("Route(3) on a function with 3 vectors succeeded")
	}
}

func TestMSIRouteFailureKeepsTheOldTable(t *testing.T) {
	r, f := newTestRouter(t)
	v, err := r.Vectors(1)
	if err != nil {
		t.Fatal(err)
	}
	old := devices.MSIMessage{Addr: 0xfee00000, Data: 0x41}
	if err := v.Route(0, old); err != nil {
		t.Fatal(err)
	}
	f.fail = errors.New("EINVAL")
	if err := v.Route(0, devices.MSIMessage{Addr: 0xfee00000, Data: 0x99}); err == nil || !strings.Contains(err.Error(), "GSI 24") {
		t.Fatalf("Route with KVM failing = %v, want an error naming GSI 24", err)
	}
	f.fail = nil
	if err := v.Route(0, old); err != nil {
		t.Fatal(err)
	}
	if len(f.tables) != 1 {
		t.Errorf("re-routing to the message KVM still has sent %d tables, want 1", len(f.tables))
	}
}

func TestMSISignal(t *testing.T) {
	r, _ := newTestRouter(t)
	v, err := r.Vectors(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Signal(1); err != nil {
		t.Fatalf("Signal of an unrouted vector: %v", err)
	}
	if err := v.Route(1, devices.MSIMessage{Addr: 0xfee00000, Data: 0x30}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := v.Signal(1); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing routed vector 0: its eventfd was never written.
	if n, err := v.fds[1].Read(); err != nil || n != 3 {
		t.Errorf("vector 1's eventfd counted %d (%v), want 3 signals", n, err)
	}
	if err := v.Signal(-1); err == nil {
		t.Error("Signal(-1) succeeded")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Signal(1); err == nil {
		t.Error("Signal after Close succeeded")
	}
}
