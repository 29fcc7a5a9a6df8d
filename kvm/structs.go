package kvm

// Regs mirrors struct kvm_regs.
type Regs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// Segment mirrors struct kvm_segment.
type Segment struct {
	Base                           uint64
	Limit                          uint32
	Selector                       uint16
	Type                           uint8
	Present, DPL, DB, S, L, G, AVL uint8
	Unusable                       uint8
	_                              uint8
}

// DTable mirrors struct kvm_dtable.
type DTable struct {
	Base  uint64
	Limit uint16
	_     [3]uint16
}

// Sregs mirrors struct kvm_sregs.
type Sregs struct {
	CS, DS, ES, FS, GS, SS  Segment
	TR, LDT                 Segment
	GDT, IDT                DTable
	CR0, CR2, CR3, CR4, CR8 uint64
	EFER                    uint64
	APICBase                uint64
	InterruptBitmap         [4]uint64
}

// FPU mirrors struct kvm_fpu.
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	_          uint32
}

// MSREntry mirrors struct kvm_msr_entry.
type MSREntry struct {
	Index uint32
	_     uint32
	Data  uint64
}

// CPUIDEntry mirrors struct kvm_cpuid_entry2.
type CPUIDEntry struct {
	Function, Index, Flags uint32
	EAX, EBX, ECX, EDX     uint32
	_                      [3]uint32
}

// LAPICState mirrors struct kvm_lapic_state: the local APIC's register page.
type LAPICState [1024]byte

// Reg reads the 32-bit APIC register at offset (e.g. 0x350 for LVT LINT0).
func (s *LAPICState) Reg(offset int) uint32 {
	return uint32(s[offset]) | uint32(s[offset+1])<<8 | uint32(s[offset+2])<<16 | uint32(s[offset+3])<<24
}

// SetReg writes the 32-bit APIC register at offset.
func (s *LAPICState) SetReg(offset int, v uint32) {
	s[offset], s[offset+1], s[offset+2], s[offset+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// userspaceMemoryRegion mirrors struct kvm_userspace_memory_region.
type userspaceMemoryRegion struct {
	Slot, Flags                         uint32
	GuestPhysAddr, MemorySize, UserAddr uint64
}

// irqLevel mirrors struct kvm_irq_level.
type irqLevel struct{ IRQ, Level uint32 }

// pitConfig mirrors struct kvm_pit_config.
type pitConfig struct {
	Flags uint32
	_     [15]uint32
}

// irqfd mirrors struct kvm_irqfd.
type irqfd struct {
	FD, GSI, Flags, ResampleFD uint32
	_                          [16]uint8
}

// ioeventfd mirrors struct kvm_ioeventfd.
type ioeventfd struct {
	Datamatch uint64
	Addr      uint64
	Len       uint32
	FD        int32
	Flags     uint32
	_         [36]uint8
}

// msi mirrors struct kvm_msi.
type msi struct {
	AddressLo, AddressHi, Data, Flags, DevID uint32
	_                                        [12]uint8
}

// irqRoutingEntry mirrors struct kvm_irq_routing_entry. U is the union:
// irqchip, pin for a route to a controller; address_lo, address_hi, data,
// devid for an MSI.
type irqRoutingEntry struct {
	GSI, Type, Flags uint32
	_                uint32
	U                [8]uint32
}

// statsHeader mirrors struct kvm_stats_header.
type statsHeader struct {
	Flags, NameSize, NumDesc, IDOffset, DescOffset, DataOffset uint32
}

const (
	pitSpeakerDummy        = 1      // KVM_PIT_SPEAKER_DUMMY
	irqfdFlagDeassign      = 1 << 0 // KVM_IRQFD_FLAG_DEASSIGN
	ioeventfdFlagDatamatch = 1 << 0
	ioeventfdFlagPIO       = 1 << 1
	ioeventfdFlagDeassign  = 1 << 2
)
