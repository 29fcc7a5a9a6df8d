package kvm

import (
	"testing"
	"unsafe"
)

// Linux's generic ioctl encoding (include/uapi/asm-generic/ioctl.h):
// dir<<30 | size<<16 | type<<8 | nr, with _IOC_WRITE=1 and _IOC_READ=2.
const kvmio = 0xae

func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | kvmio<<8 | nr }
func io(nr uintptr) uintptr             { return ioc(0, nr, 0) }
func iow(nr, size uintptr) uintptr      { return ioc(1, nr, size) }
func ior(nr, size uintptr) uintptr      { return ioc(2, nr, size) }
func iowr(nr, size uintptr) uintptr     { return ioc(3, nr, size) }

// flexHeader is sizeof(struct kvm_cpuid2) and sizeof(struct kvm_msrs) in C:
// their entry arrays are flexible and do not count.
const flexHeader = 8

// TestIoctlNumbers checks each request constant twice: against the value
// recorded from linux/kvm.h, and against the encoding of the C definition
// with the size of our mirrored struct, so a wrong struct size shows up too.
func TestIoctlNumbers(t *testing.T) {
	var u64 uint64
	for _, c := range []struct {
		name           string
		got, want, enc uintptr
	}{
		{"KVM_GET_API_VERSION", kvmGetAPIVersion, 0xae00, io(0x00)},
		{"KVM_CREATE_VM", kvmCreateVM, 0xae01, io(0x01)},
		{"KVM_CHECK_EXTENSION", kvmCheckExtension, 0xae03, io(0x03)},
		{"KVM_GET_VCPU_MMAP_SIZE", kvmGetVCPUMmapSize, 0xae04, io(0x04)},
		{"KVM_GET_SUPPORTED_CPUID", kvmGetSupportedCPUID, 0xc008ae05, iowr(0x05, flexHeader)},
		{"KVM_CREATE_VCPU", kvmCreateVCPU, 0xae41, io(0x41)},
		{"KVM_SET_USER_MEMORY_REGION", kvmSetUserMemoryRegion, 0x4020ae46, iow(0x46, unsafe.Sizeof(userspaceMemoryRegion{}))},
		{"KVM_SET_TSS_ADDR", kvmSetTSSAddr, 0xae47, io(0x47)},
		{"KVM_SET_IDENTITY_MAP_ADDR", kvmSetIdentityMapAddr, 0x4008ae48, iow(0x48, unsafe.Sizeof(u64))},
		{"KVM_CREATE_IRQCHIP", kvmCreateIRQChip, 0xae60, io(0x60)},
		{"KVM_IRQ_LINE", kvmIRQLine, 0x4008ae61, iow(0x61, unsafe.Sizeof(irqLevel{}))},
		{"KVM_REGISTER_COALESCED_MMIO", kvmRegisterCoalescedMMIO, 0x4010ae67, iow(0x67, unsafe.Sizeof(coalescedZone{}))},
		{"KVM_SET_GSI_ROUTING", kvmSetGSIRouting, 0x4008ae6a, iow(0x6a, uintptr(irqRoutingHeaderWords*4))},
		{"KVM_IRQFD", kvmIRQFD, 0x4020ae76, iow(0x76, unsafe.Sizeof(irqfd{}))},
		{"KVM_CREATE_PIT2", kvmCreatePIT2, 0x4040ae77, iow(0x77, unsafe.Sizeof(pitConfig{}))},
		{"KVM_IOEVENTFD", kvmIOEventFD, 0x4040ae79, iow(0x79, unsafe.Sizeof(ioeventfd{}))},
		{"KVM_RUN", kvmRun, 0xae80, io(0x80)},
		{"KVM_GET_REGS", kvmGetRegs, 0x8090ae81, ior(0x81, unsafe.Sizeof(Regs{}))},
		{"KVM_SET_REGS", kvmSetRegs, 0x4090ae82, iow(0x82, unsafe.Sizeof(Regs{}))},
		{"KVM_GET_SREGS", kvmGetSregs, 0x8138ae83, ior(0x83, unsafe.Sizeof(Sregs{}))},
		{"KVM_SET_SREGS", kvmSetSregs, 0x4138ae84, iow(0x84, unsafe.Sizeof(Sregs{}))},
		{"KVM_SET_MSRS", kvmSetMSRs, 0x4008ae89, iow(0x89, flexHeader)},
		{"KVM_GET_FPU", kvmGetFPU, 0x81a0ae8c, ior(0x8c, unsafe.Sizeof(FPU{}))},
		{"KVM_SET_FPU", kvmSetFPU, 0x41a0ae8d, iow(0x8d, unsafe.Sizeof(FPU{}))},
		{"KVM_GET_LAPIC", kvmGetLAPIC, 0x8400ae8e, ior(0x8e, unsafe.Sizeof(LAPICState{}))},
		{"KVM_SET_LAPIC", kvmSetLAPIC, 0x4400ae8f, iow(0x8f, unsafe.Sizeof(LAPICState{}))},
		{"KVM_SET_CPUID2", kvmSetCPUID2, 0x4008ae90, iow(0x90, flexHeader)},
		{"KVM_GET_MP_STATE", kvmGetMPState, 0x8004ae98, ior(0x98, unsafe.Sizeof(MPState(0)))},
		{"KVM_GET_TSC_KHZ", kvmGetTSCKHz, 0xaea3, io(0xa3)},
		{"KVM_SIGNAL_MSI", kvmSignalMSI, 0x4020aea5, iow(0xa5, unsafe.Sizeof(msi{}))},
		{"KVM_GET_STATS_FD", kvmGetStatsFD, 0xaece, io(0xce)},
	} {
		if c.got != c.want || c.got != c.enc {
			t.Errorf("%s = %#x, kvm.h value %#x, encoded from our struct %#x", c.name, c.got, c.want, c.enc)
		}
	}
}

// TestStructSizes pins every mirrored struct to sizeof() of its C original
// (docs/facts.md, from linux/kvm.h on x86-64).
func TestStructSizes(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"kvm_userspace_memory_region", unsafe.Sizeof(userspaceMemoryRegion{}), 32},
		{"kvm_regs", unsafe.Sizeof(Regs{}), 144},
		{"kvm_segment", unsafe.Sizeof(Segment{}), 24},
		{"kvm_dtable", unsafe.Sizeof(DTable{}), 16},
		{"kvm_sregs", unsafe.Sizeof(Sregs{}), 312},
		{"kvm_fpu", unsafe.Sizeof(FPU{}), 416},
		{"kvm_lapic_state", unsafe.Sizeof(LAPICState{}), 1024},
		{"kvm_cpuid_entry2", unsafe.Sizeof(CPUIDEntry{}), 40},
		{"kvm_msr_entry", unsafe.Sizeof(MSREntry{}), 16},
		{"kvm_irqfd", unsafe.Sizeof(irqfd{}), 32},
		{"kvm_ioeventfd", unsafe.Sizeof(ioeventfd{}), 64},
		{"kvm_pit_config", unsafe.Sizeof(pitConfig{}), 64},
		{"kvm_irq_level", unsafe.Sizeof(irqLevel{}), 8},
		{"kvm_msi", unsafe.Sizeof(msi{}), 32},
		{"kvm_irq_routing_entry", unsafe.Sizeof(irqRoutingEntry{}), 48},
		{"kvm_irq_routing header", irqRoutingHeaderWords * 4, 8},
		{"kvm_stats_header", unsafe.Sizeof(statsHeader{}), statsHeaderSize},
		{"kvm_msrs header", unsafe.Offsetof(msrs{}.Entries), flexHeader},
		{"kvm_coalesced_mmio_zone", unsafe.Sizeof(coalescedZone{}), 16},
		{"kvm_coalesced_mmio", ringEntrySize, 24},
		{"kvm_coalesced_mmio_ring header", ringHeader, 8},
	} {
		if c.got != c.want {
			t.Errorf("sizeof(struct %s): Go mirror has %d bytes, C has %d", c.name, c.got, c.want)
		}
	}
}

// TestFieldOffsets checks the fields whose place the compiler could get
// wrong without changing the total size, against offsetof() in the C structs.
func TestFieldOffsets(t *testing.T) {
	var s Sregs
	var f FPU
	var seg Segment
	var e CPUIDEntry
	var io ioeventfd
	var re irqRoutingEntry
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"kvm_segment.selector", unsafe.Offsetof(seg.Selector), 12},
		{"kvm_segment.unusable", unsafe.Offsetof(seg.Unusable), 22},
		{"kvm_sregs.gdt", unsafe.Offsetof(s.GDT), 192},
		{"kvm_sregs.cr0", unsafe.Offsetof(s.CR0), 224},
		{"kvm_sregs.efer", unsafe.Offsetof(s.EFER), 264},
		{"kvm_sregs.apic_base", unsafe.Offsetof(s.APICBase), 272},
		{"kvm_sregs.interrupt_bitmap", unsafe.Offsetof(s.InterruptBitmap), 280},
		{"kvm_fpu.fcw", unsafe.Offsetof(f.FCW), 128},
		{"kvm_fpu.last_ip", unsafe.Offsetof(f.LastIP), 136},
		{"kvm_fpu.xmm", unsafe.Offsetof(f.XMM), 152},
		{"kvm_fpu.mxcsr", unsafe.Offsetof(f.MXCSR), 408},
		{"kvm_cpuid_entry2.eax", unsafe.Offsetof(e.EAX), 12},
		{"kvm_ioeventfd.flags", unsafe.Offsetof(io.Flags), 24},
		{"kvm_irq_routing_entry.u", unsafe.Offsetof(re.U), 16},
	} {
		if c.got != c.want {
			t.Errorf("offsetof(%s) = %d, C has %d", c.name, c.got, c.want)
		}
	}
}

// TestRunLayout checks the kvm_run offsets the decoder uses against the
// values in docs/facts.md.
func TestRunLayout(t *testing.T) {
	if runExitReason != 8 || runUnion != 32 || runImmediateExit != 1 || minRunSize != 2352 {
		t.Errorf("kvm_run offsets: immediate_exit %d exit_reason %d union %d size %d; want 1, 8, 32, 2352",
			runImmediateExit, runExitReason, runUnion, minRunSize)
	}
	if ringEntryLen != 8 || ringEntryPIO != 12 || ringEntryData != 16 || maxCoalesced(4096) != 170 {
		t.Errorf("kvm_coalesced_mmio: len at %d, pio at %d, data at %d, %d entries a page; want 8, 12, 16, 170",
			ringEntryLen, ringEntryPIO, ringEntryData, maxCoalesced(4096))
	}
	if cpuidEntryWords*4 != 40 || cpuid2HeaderWords*4 != flexHeader {
		t.Errorf("kvm_cpuid2 buffer: header %d words, entry %d words", cpuid2HeaderWords, cpuidEntryWords)
	}
}
