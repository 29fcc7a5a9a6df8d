package kvm

import (
	"os"
	"testing"
)

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestNoFDLeak creates and tears down twenty VMs, each with a vCPU and both
// statistics fds, and checks every fd was given back.
func TestNoFDLeak(t *testing.T) {
	sys := openKVM(t)
	before := openFDs(t)
	for i := 0; i < 20; i++ {
		vm, err := sys.CreateVM()
		if err != nil {
			t.Fatal(err)
		}
		cpu, err := vm.CreateVCPU(0)
		if err != nil {
			t.Fatal(err)
		}
		vst, err := vm.Stats()
		if err != nil {
			t.Fatal(err)
		}
		cst, err := cpu.Stats()
		if err != nil {
			t.Fatal(err)
		}
		for what, c := range map[string]interface{ Close() error }{"vCPU stats": cst, "VM stats": vst, "vCPU": cpu, "VM": vm} {
			check(t, "close "+what, c.Close())
		}
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d fds open before 20 VMs, %d after", before, after)
	}
}
