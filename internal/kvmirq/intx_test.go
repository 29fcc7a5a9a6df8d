package kvmirq

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
	s := NewSharedLines(f)
	a, b := s.Pin(17, 1), s.Pin(17, 9)
	other := s.Pin(18, 1)
	a.SetLevel(true)
	b.SetLevel(true)
	a.SetLevel(true)
	a.SetLevel(false)
	b.SetLevel(false)
	b.SetLevel(false)
	other.SetLevel(true)
	want := []string{"17=true", "17=false", "18=true"}
	if fmt.Sprint(f.calls) != fmt.Sprint(want) {
		t.Errorf("KVM_IRQ_LINE calls %v, want %v", f.calls, want)
	}
}

func TestISALine(t *testing.T) {
	f := &fakeIRQs{}
	l := ISALine(f, 4)
	l.SetLevel(true)
	l.SetLevel(false)
	if want := "[4=true 4=false]"; fmt.Sprint(f.calls) != want {
		t.Errorf("KVM_IRQ_LINE calls %v, want %v", f.calls, want)
	}
}
