package vcpu

import (
	"testing"

	"github.com/govmm/govmm/kvm"
)

func find(entries []kvm.CPUIDEntry, fn, index uint32) *kvm.CPUIDEntry {
	for i := range entries {
		if entries[i].Function == fn && entries[i].Index == index {
			return &entries[i]
		}
	}
	return nil
}

// hostLike is a supported set shaped like what KVM reports on an AMD host.
func hostLike() []kvm.CPUIDEntry {
	return []kvm.CPUIDEntry{
		{Function: 0, EAX: 0xd},
		{Function: leafFeatures, EBX: 0x00000800, ECX: 1 << 24, EDX: 1},
		{Function: leafTopology, Index: 0}, {Function: leafTopology, Index: 1}, {Function: leafTopology, Index: 2},
		{Function: leafKVMSignature, EAX: 0x40000001, EBX: 0x4b4d564b, ECX: 0x564b4d56, EDX: 0x4d},
		{Function: 0x40000001, EAX: 1<<3 | 1<<24},
		{Function: leafAMDAddrSizes, ECX: 0x3f},
		{Function: leafAMDTopology, EAX: 7, EBX: 0x100, ECX: 3},
	}
}

func TestCPUIDTopologyPerVCPU(t *testing.T) {
	const count = 4
	for id := 0; id < count; id++ {
		got := CPUID(hostLike(), id, count, 2_500_000)
		f := find(got, leafFeatures, 0)
		if apic := f.EBX >> 24; apic != uint32(id) {
			t.Errorf("vCPU %d: leaf 1 APIC ID %d", id, apic)
		}
		if logical := f.EBX >> 16 & 0xff; logical != count {
			t.Errorf("vCPU %d: leaf 1 logical count %d, want %d", id, logical, count)
		}
		if f.EBX&0xffff != 0x0800 {
			t.Errorf("vCPU %d: leaf 1 CLFLUSH bits lost: %#x", id, f.EBX)
		}
		if f.ECX&featureHypervisor == 0 || f.ECX&(1<<24) == 0 {
			t.Errorf("vCPU %d: leaf 1 ECX %#x lacks the hypervisor bit or lost TSC-deadline", id, f.ECX)
		}
		if f.EDX&featureHTT == 0 {
			t.Errorf("vCPU %d: HTT not set with %d CPUs", id, count)
		}
		for sub := uint32(0); sub < 3; sub++ {
			if e := find(got, leafTopology, sub); e.EDX != uint32(id) {
				t.Errorf("vCPU %d: leaf 0xb.%d x2APIC ID %d", id, sub, e.EDX)
			}
		}
		if core := find(got, leafTopology, 1); core.EBX != count || core.EAX != 2 || core.ECX>>8&0xff != topologyLevelCore {
			t.Errorf("vCPU %d: leaf 0xb.1 = %+v, want %d cores, shift 2", id, core, count)
		}
		if amd := find(got, leafAMDAddrSizes, 0); amd.ECX&0xff != count-1 {
			t.Errorf("vCPU %d: 0x80000008 NC = %d", id, amd.ECX&0xff)
		}
		if ext := find(got, leafAMDTopology, 0); ext.EAX != uint32(id) {
			t.Errorf("vCPU %d: 0x8000001e extended APIC ID %d", id, ext.EAX)
		}
	}
}

func TestCPUIDKVMLeaves(t *testing.T) {
	got := CPUID(hostLike(), 0, 1, 2_500_000)
	sig := find(got, leafKVMSignature, 0)
	if sig == nil || sig.EAX < leafKVMTiming {
		t.Fatalf("KVM signature leaf %+v does not announce the timing leaf", sig)
	}
	if feat := find(got, 0x40000001, 0); feat == nil || feat.EAX&(1<<3) == 0 {
		t.Errorf("KVM features leaf lost kvmclock (CLOCKSOURCE2): %+v", feat)
	}
	timing := find(got, leafKVMTiming, 0)
	if timing == nil || timing.EAX != 2_500_000 || timing.EBX != lapicBusKHz {
		t.Errorf("timing leaf %+v, want TSC 2500000 kHz and bus %d kHz", timing, lapicBusKHz)
	}
	if f := find(got, leafFeatures, 0); f.EDX&featureHTT != 0 {
		t.Error("HTT set for a single vCPU")
	}
}

func TestCPUIDWithoutKVMLeavesAddsNoTimingLeaf(t *testing.T) {
	got := CPUID([]kvm.CPUIDEntry{{Function: leafFeatures}}, 0, 1, 2_500_000)
	if find(got, leafKVMTiming, 0) != nil {
		t.Error("timing leaf added although KVM offers no paravirtual leaves")
	}
}
