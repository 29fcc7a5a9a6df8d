package kvm

import (
	"errors"
	"os"
	"testing"
)

const kvmPath = "/dev/kvm"

// openKVM opens /dev/kvm or skips; with GOVMM_REQUIRE_KVM=1 (the sandbox and
// CI set it) a missing KVM fails the test instead.
func openKVM(t *testing.T) *System {
	t.Helper()
	sys, err := Open(kvmPath)
	if err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatalf("GOVMM_REQUIRE_KVM=1 but KVM cannot be used: %v", err)
		}
		t.Skipf("skipping: needs KVM (%v); set GOVMM_REQUIRE_KVM=1 to make this a failure", err)
	}
	t.Cleanup(func() { check(t, "close /dev/kvm", sys.Close()) })
	return sys
}

func newVM(t *testing.T, sys *System) *VM {
	t.Helper()
	vm, err := sys.CreateVM()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { check(t, "close VM", vm.Close()) })
	return vm
}

func newVCPU(t *testing.T, vm *VM, id int) *VCPU {
	t.Helper()
	cpu, err := vm.CreateVCPU(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { check(t, "close vCPU", cpu.Close()) })
	return cpu
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// Guest layout for the real-mode tests: 2 MiB of RAM at 0, code at 0x1000,
// and DS based just past RAM so that [DS:x] is an MMIO access.
const (
	ramSize  = 2 << 20
	codeAddr = 0x1000
	dsBase   = ramSize
)

// realModeGuest makes a VM with one vCPU about to run code at codeAddr in
// real mode, without an in-kernel irqchip so that HLT exits to user space.
func realModeGuest(t *testing.T, code []byte) (*VM, *VCPU) {
	t.Helper()
	sys := openKVM(t)
	vm := newVM(t, sys)
	// Intel without unrestricted guest runs real mode through vm86 and needs
	// these pages; AMD ignores them. Both sit in the top 16 MiB below 4 GiB.
	check(t, "SetTSSAddr", vm.SetTSSAddr(0xfffbd000))
	check(t, "SetIdentityMapAddr", vm.SetIdentityMapAddr(0xfffbc000))
	mem := guestRAM(t, vm, ramSize)
	copy(mem[codeAddr:], code)
	cpu := newVCPU(t, vm, 0)
	s, err := cpu.Sregs()
	if err != nil {
		t.Fatal(err)
	}
	s.CS.Base, s.CS.Selector = 0, 0
	s.DS.Base, s.DS.Selector = dsBase, 0
	if err := cpu.SetSregs(&s); err != nil {
		t.Fatal(err)
	}
	if err := cpu.SetRegs(&Regs{RIP: codeAddr, RFLAGS: 2}); err != nil {
		t.Fatal(err)
	}
	return vm, cpu
}

// runToExit runs until KVM reports an exit, re-entering on ErrInterrupted.
func runToExit(t *testing.T, cpu *VCPU) Exit {
	t.Helper()
	for {
		err := cpu.Run()
		if errors.Is(err, ErrInterrupted) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return cpu.Exit()
	}
}
