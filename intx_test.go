package govmm

import (
	"fmt"
	"testing"
)

type fakeIRQs struct{ calls []string }

func (f *fakeIRQs) IRQLine(irq uint32, level bool) error {
	f.calls = append(f.calls, fmt.Sprintf("%d=%v", irq, level))
	return nil
}

// Two devices on one GSI: the line stays high until both let go, and only
// level changes reach KVM.
func TestSharedINTx(t *testing.T) {
	f := &fakeIRQs{}
	v := &VM{intx: map[uint32]*sharedIRQ{}}
	a, gsiA := v.intxLine(1, 0)
	b, gsiB := v.intxLine(9, 0)
	if gsiA != 17 || gsiB != 17 {
		t.Fatalf("devices 1 and 9 INTA# on GSIs %d and %d, want 17 for both", gsiA, gsiB)
	}
	if _, gsi := v.intxLine(1, 1); gsi != 18 {
		t.Errorf("device 1 INTB# on GSI %d, want 18", gsi)
	}
	a.line.vm, b.line.vm = f, f
	a.SetLevel(true)
	b.SetLevel(true)
	a.SetLevel(true)
	a.SetLevel(false)
	b.SetLevel(false)
	b.SetLevel(false)
	want := []string{"17=true", "17=false"}
	if fmt.Sprint(f.calls) != fmt.Sprint(want) {
		t.Errorf("KVM_IRQ_LINE calls %v, want %v", f.calls, want)
	}
}

func TestPCIRoutesMatchINTxLines(t *testing.T) {
	routes := pciRoutes()
	if len(routes) != 31*4 {
		t.Fatalf("%d _PRT entries, want 4 pins for each of devices 1-31", len(routes))
	}
	v := &VM{intx: map[uint32]*sharedIRQ{}}
	for _, r := range routes {
		if _, gsi := v.intxLine(r.Device, r.Pin); gsi != r.GSI || gsi < 16 || gsi > 23 {
			t.Errorf("device %d pin %d: _PRT says GSI %d, intxLine %d; want one of 16-23", r.Device, r.Pin, r.GSI, gsi)
		}
	}
}
