package kvm

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDefaultRoutes pins the table to kvm_setup_default_irq_routing: 24 I/O
// APIC routes, and the 16 ISA GSIs on the PIC pair as well.
func TestDefaultRoutes(t *testing.T) {
	routes := DefaultRoutes()
	if len(routes) != 40 {
		t.Fatalf("%d default routes, want 24 I/O APIC + 16 PIC", len(routes))
	}
	seen := map[IRQChipRoute]bool{}
	for _, r := range routes {
		seen[r.(IRQChipRoute)] = true
	}
	for gsi := uint32(0); gsi < 24; gsi++ {
		if !seen[IRQChipRoute{GSI: gsi, Chip: IRQChipIOAPIC, Pin: gsi}] {
			t.Errorf("no route GSI %d -> I/O APIC pin %d", gsi, gsi)
		}
	}
	for _, want := range []IRQChipRoute{
		{GSI: 0, Chip: IRQChipPICMaster, Pin: 0},
		{GSI: 4, Chip: IRQChipPICMaster, Pin: 4},
		{GSI: 8, Chip: IRQChipPICSlave, Pin: 0},
		{GSI: 15, Chip: IRQChipPICSlave, Pin: 7},
	} {
		if !seen[want] {
			t.Errorf("no route %+v", want)
		}
	}
}

func TestRoutingEncoding(t *testing.T) {
	buf := newIRQRouting([]irqRoutingEntry{
		mustEncode(t, IRQChipRoute{GSI: 9, Chip: IRQChipPICSlave, Pin: 1}),
		mustEncode(t, MSIRoute{GSI: 24, Addr: 0x1_fee0_1000, Data: 0x4031}),
	})
	want := []uint32{
		2, 0, // nr, flags
		9, routingIRQChip, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0,
		24, routingMSI, 0, 0, 0xfee01000, 1, 0x4031, 0, 0, 0, 0, 0,
	}
	if len(buf) != len(want) {
		t.Fatalf("struct kvm_irq_routing is %d words, want %d", len(buf), len(want))
	}
	for i := range want {
		if buf[i] != want[i] {
			t.Errorf("word %d = %#x, want %#x (buffer %#x)", i, buf[i], want[i], buf)
			break
		}
	}
	if got := newIRQRouting(nil); len(got) != 2 || got[0] != 0 {
		t.Errorf("empty table = %v, want a bare header", got)
	}
}

func mustEncode(t *testing.T, r RoutingEntry) irqRoutingEntry {
	t.Helper()
	e, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRoutingRejectsBadEntries(t *testing.T) {
	vm := &VM{} // never reached: the entries fail before the ioctl
	for _, tc := range []struct {
		entries []RoutingEntry
		says    string
	}{
		{[]RoutingEntry{IRQChipRoute{GSI: 1, Chip: IRQChipPICMaster, Pin: 8}}, "no pin 8"},
		{[]RoutingEntry{IRQChipRoute{GSI: 1, Chip: IRQChipIOAPIC, Pin: 24}}, "no pin 24"},
		{[]RoutingEntry{IRQChipRoute{GSI: 1, Chip: 3}}, "unknown irqchip 3"},
		{[]RoutingEntry{MSIRoute{GSI: MaxGSIRoutes}}, "GSI 4096"},
		{make([]RoutingEntry, MaxGSIRoutes+1), "at most"},
	} {
		if err := vm.SetGSIRouting(tc.entries); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("SetGSIRouting(%d entries) = %v, want an error saying %q", len(tc.entries), err, tc.says)
		}
	}
}

// TestMSIRouteThroughIRQFD routes a GSI to an MSI, signals it through an
// irqfd and finds the vector pending in the local APIC's IRR.
func TestMSIRouteThroughIRQFD(t *testing.T) {
	vm := newVM(t, openKVM(t))
	check(t, "CreateIRQChip", vm.CreateIRQChip())
	cpu := newVCPU(t, vm, 0)
	const gsi, vector = 24, 0x31
	routes := append(DefaultRoutes(), MSIRoute{GSI: gsi, Addr: 0xfee00000, Data: vector})
	if err := vm.SetGSIRouting(routes); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetGSIRouting(append(DefaultRoutes(), IRQChipRoute{GSI: 1, Chip: IRQChipIOAPIC, Pin: 99})); err == nil {
		t.Error("route to I/O APIC pin 99 accepted")
	}
	check(t, "IRQLine after re-sending the defaults", vm.IRQLine(4, true))
	s, err := cpu.LAPIC()
	if err != nil {
		t.Fatal(err)
	}
	const svr, apicEnabled = 0xf0, 0x100
	s.SetReg(svr, apicEnabled|0xff)
	check(t, "SetLAPIC", cpu.SetLAPIC(&s))

	fd := eventFD(t)
	check(t, "IRQFD", vm.IRQFD(fd, gsi))
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(fd, one[:]); err != nil {
		t.Fatal(err)
	}
	const irr = 0x200
	reg, bit := irr+vector/32*0x10, uint32(1)<<(vector%32)
	// KVM may inject from a work item rather than in the write.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s, err := cpu.LAPIC()
		if err != nil {
			t.Fatal(err)
		}
		if s.Reg(reg)&bit != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vector %#x not pending in the IRR (%#x = %#x) after the irqfd write", vector, reg, s.Reg(reg))
		}
	}
	check(t, "RemoveIRQFD", vm.RemoveIRQFD(fd, gsi))
}
