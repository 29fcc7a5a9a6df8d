package vcpu

import "github.com/govmm/govmm/kvm"

// CPUID leaves and bits this package shapes (Intel SDM vol. 2A "CPUID"; AMD
// APM vol. 3 appendix E; Documentation/virt/kvm/x86/cpuid.rst).
const (
	leafFeatures      = 0x1
	leafCacheParams   = 0x4
	leafTopology      = 0xb
	leafTopologyV2    = 0x1f
	leafKVMSignature  = 0x40000000
	leafKVMTiming     = 0x40000010
	leafAMDAddrSizes  = 0x80000008
	leafAMDTopology   = 0x8000001e
	featureHypervisor = 1 << 31 // leaf 1 ECX
	featureHTT        = 1 << 28 // leaf 1 EDX

	// topologyLevelSMT and topologyLevelCore are leaf 0xb level types (ECX[15:8]).
	topologyLevelSMT  = 1
	topologyLevelCore = 2

	// lapicBusKHz is the frequency of KVM's emulated APIC bus (1 GHz).
	lapicBusKHz = 1000000
)

// CPUID returns the CPUID table for vCPU id of count: the host's supported
// set, with this vCPU's APIC ID, a topology of count cores in one socket,
// the hypervisor bit, and KVM's paravirtual leaves (kvmclock among them) plus
// the timing leaf, so the guest never has to calibrate its TSC against the PIT.
func CPUID(supported []kvm.CPUIDEntry, id, count int, tscKHz uint32) []kvm.CPUIDEntry {
	out := make([]kvm.CPUIDEntry, 0, len(supported)+2)
	apicID := uint32(id)
	coreBits := bitsFor(count)
	for _, e := range supported {
		switch e.Function {
		case leafFeatures:
			e.EBX = e.EBX&0x0000ffff | apicID<<24 | uint32(min(count, 255))<<16
			e.ECX |= featureHypervisor
			if count > 1 {
				e.EDX |= featureHTT
			}
		case leafCacheParams:
			// EAX[31:26]: addressable core IDs in the package, minus one.
			if e.EAX&0x1f != 0 {
				e.EAX = e.EAX&0x03ffffff | uint32(count-1)<<26
			}
		case leafTopology, leafTopologyV2:
			e = topologyEntry(e, apicID, uint32(count), coreBits)
		case leafKVMSignature:
			e.EAX = max(e.EAX, leafKVMTiming)
		case leafAMDAddrSizes:
			// ECX[7:0] NC: cores minus one; ECX[15:12] ApicIdCoreIdSize.
			e.ECX = e.ECX&^0xf0ff | uint32(count-1)&0xff | coreBits<<12
		case leafAMDTopology:
			e.EAX, e.EBX, e.ECX = apicID, apicID&0xff, 0
		}
		out = append(out, e)
	}
	if tscKHz != 0 && hasLeaf(supported, leafKVMSignature) {
		// The VMware-defined timing leaf that KVM guests also read: TSC and
		// APIC bus frequency in kHz.
		out = append(out, kvm.CPUIDEntry{Function: leafKVMTiming, EAX: tscKHz, EBX: lapicBusKHz})
	}
	return out
}

// topologyEntry fills one sub-leaf of the extended topology leaf: one thread
// per core, count cores per package.
func topologyEntry(e kvm.CPUIDEntry, apicID, count, coreBits uint32) kvm.CPUIDEntry {
	e.EDX = apicID
	switch e.Index {
	case 0:
		e.EAX, e.EBX, e.ECX = 0, 1, topologyLevelSMT<<8
	case 1:
		e.EAX, e.EBX, e.ECX = coreBits, count, topologyLevelCore<<8|1
	default:
		e.EAX, e.EBX, e.ECX = 0, 0, e.Index
	}
	return e
}

// bitsFor is the number of APIC ID bits needed to number n cores.
func bitsFor(n int) uint32 {
	b := uint32(0)
	for (1 << b) < n {
		b++
	}
	return b
}

func hasLeaf(entries []kvm.CPUIDEntry, fn uint32) bool {
	for _, e := range entries {
		if e.Function == fn {
			return true
		}
	}
	return false
}
