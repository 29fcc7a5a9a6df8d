package kvm

import (
	"encoding/binary"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func eventFD(t *testing.T) int {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { check(t, "close eventfd", unix.Close(fd)) })
	return fd
}

// eventCount reads and resets an eventfd's counter; 0 if it was not signalled.
func eventCount(t *testing.T, fd int) uint64 {
	t.Helper()
	buf := make([]byte, 8)
	if _, err := unix.Read(fd, buf); err == unix.EAGAIN {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.Uint64(buf)
}

// TestIOEventFDMatch: a matching OUT signals the eventfd inside KVM; one
// with other data still exits to user space.
func TestIOEventFDMatch(t *testing.T) {
	vm, cpu := realModeGuest(t, []byte{
		0xba, 0x00, 0x05, // mov dx, 0x500
		0xb0, 'A', 0xee, // mov al, 'A'; out dx, al   -> eventfd
		0xb0, 'B', 0xee, // mov al, 'B'; out dx, al   -> IO exit
		0xf4, // hlt
	})
	fd := eventFD(t)
	if err := vm.IOEventFDMatch(fd, 0x500, 1, true, 'A'); err != nil {
		t.Fatal(err)
	}
	if e := runToExit(t, cpu); e.Reason != ExitIO || e.IO.Port != 0x500 || string(e.IO.Data) != "B" {
		t.Fatalf("first exit %v %+v, want the OUT of 'B' (the 'A' should not exit)", e.Reason, e.IO)
	}
	if n := eventCount(t, fd); n != 1 {
		t.Errorf("eventfd count %d after one matching OUT, want 1", n)
	}
	if e := runToExit(t, cpu); e.Reason != ExitHLT {
		t.Errorf("second exit %v, want HLT", e.Reason)
	}
	check(t, "RemoveIOEventFDMatch", vm.RemoveIOEventFDMatch(fd, 0x500, 1, true, 'A'))
	if err := vm.RemoveIOEventFD(fd, 0x500, 1, true); err == nil {
		t.Error("removing an ioeventfd that is not there succeeded")
	}
}

func TestIOEventFDAnyData(t *testing.T) {
	vm, cpu := realModeGuest(t, []byte{0xba, 0x00, 0x05, 0xee, 0xee, 0xf4}) // 2x out 0x500; hlt
	fd := eventFD(t)
	if err := vm.IOEventFD(fd, 0x500, 1, true); err != nil {
		t.Fatal(err)
	}
	if e := runToExit(t, cpu); e.Reason != ExitHLT {
		t.Fatalf("exit %v, want HLT with both OUTs absorbed", e.Reason)
	}
	if n := eventCount(t, fd); n != 2 {
		t.Errorf("eventfd count %d, want 2", n)
	}
	check(t, "RemoveIOEventFD", vm.RemoveIOEventFD(fd, 0x500, 1, true))
}

func TestInterruptControllers(t *testing.T) {
	vm := newVM(t, openKVM(t))
	if err := vm.IRQLine(4, true); err == nil || !strings.Contains(err.Error(), "KVM_IRQ_LINE 4") {
		t.Errorf("IRQLine without an irqchip: %v, want a KVM_IRQ_LINE error", err)
	}
	check(t, "CreateIRQChip", vm.CreateIRQChip())
	check(t, "CreatePIT2", vm.CreatePIT2())
	check(t, "IRQLine high", vm.IRQLine(4, true))
	check(t, "IRQLine low", vm.IRQLine(4, false))
	fd := eventFD(t)
	check(t, "IRQFD", vm.IRQFD(fd, 5))
	if err := vm.IRQFD(fd, 5); err == nil {
		t.Error("the same eventfd assigned twice to GSI 5")
	}
	check(t, "RemoveIRQFD", vm.RemoveIRQFD(fd, 5))
	newVCPU(t, vm, 0)
	check(t, "SignalMSI", vm.SignalMSI(0xfee00000, 0x31))
}

func TestLAPIC(t *testing.T) {
	vm := newVM(t, openKVM(t))
	check(t, "CreateIRQChip", vm.CreateIRQChip())
	cpu := newVCPU(t, vm, 1)
	s, err := cpu.LAPIC()
	if err != nil {
		t.Fatal(err)
	}
	if id := s.Reg(0x20) >> 24; id != 1 {
		t.Errorf("APIC ID register says %d for vCPU 1", id)
	}
	const lvt0, extINT = 0x350, 0x700
	s.SetReg(lvt0, extINT)
	if err := cpu.SetLAPIC(&s); err != nil {
		t.Fatal(err)
	}
	back, err := cpu.LAPIC()
	if err != nil {
		t.Fatal(err)
	}
	if back.Reg(lvt0) != extINT {
		t.Errorf("LVT LINT0 %#x after setting %#x", back.Reg(lvt0), extINT)
	}
	// With the in-kernel APIC, vCPU 0 boots and the others wait for INIT.
	if st, err := cpu.MPState(); err != nil || st != MPUninitialized {
		t.Errorf("vCPU 1 MP state %v (%v), want %v", st, err, MPUninitialized)
	}
	if st, err := newVCPU(t, vm, 0).MPState(); err != nil || st != MPRunnable {
		t.Errorf("vCPU 0 MP state %v (%v), want %v", st, err, MPRunnable)
	}
}

func TestVCPUState(t *testing.T) {
	sys := openKVM(t)
	vm := newVM(t, sys)
	cpu := newVCPU(t, vm, 0)
	if cpu.ID() != 0 {
		t.Errorf("ID %d", cpu.ID())
	}
	if _, err := vm.CreateVCPU(0); err == nil || !strings.Contains(err.Error(), "KVM_CREATE_VCPU 0") {
		t.Errorf("second vCPU 0: %v, want a KVM_CREATE_VCPU 0 error", err)
	}
	supported, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	check(t, "SetCPUID", cpu.SetCPUID(supported))
	khz, err := cpu.TSCKHz()
	if err != nil || khz == 0 {
		t.Errorf("TSCKHz = %d, %v", khz, err)
	}
	in := FPU{FCW: 0x27f, MXCSR: 0x1fc0}
	in.XMM[3][0], in.FPR[1][0] = 0x55, 0x66
	if err := cpu.SetFPU(&in); err != nil {
		t.Fatal(err)
	}
	f, err := cpu.FPU()
	if err != nil || f.FCW != in.FCW || f.XMM[3][0] != 0x55 || f.FPR[1][0] != 0x66 {
		t.Errorf("FPU after SetFPU: FCW %#x XMM3 %#x ST1 %#x (%v)", f.FCW, f.XMM[3][0], f.FPR[1][0], err)
	}
}

func TestSetMSRs(t *testing.T) {
	cpu := newVCPU(t, newVM(t, openKVM(t)), 0)
	const sysenterCS = 0x174
	check(t, "SetMSRs", cpu.SetMSRs([]MSREntry{{Index: sysenterCS, Data: 0x10}}))
	err := cpu.SetMSRs([]MSREntry{{Index: sysenterCS, Data: 0x10}, {Index: 0xdeadbeef, Data: 1}})
	if err == nil || !strings.Contains(err.Error(), "0xdeadbeef") {
		t.Errorf("SetMSRs with an MSR that does not exist: %v, want an error naming 0xdeadbeef", err)
	}
	if err := cpu.SetMSRs(make([]MSREntry, maxMSRs+1)); err == nil {
		t.Errorf("SetMSRs accepted %d entries", maxMSRs+1)
	}
}
