package kvm

import "fmt"

// Cap is a KVM capability number (KVM_CAP_* in linux/kvm.h).
type Cap int

// Capabilities govmm asks about.
const (
	CapIRQChip       Cap = 0
	CapUserMemory    Cap = 3
	CapExtCPUID      Cap = 7
	CapCoalescedMMIO Cap = 15
	CapNrVCPUs       Cap = 9
	CapIRQRouting    Cap = 25
	CapIRQFD         Cap = 32
	CapPIT2          Cap = 33
	CapIOEventFD     Cap = 36
	CapGetTSCKHz     Cap = 61
	CapMaxVCPUs      Cap = 66
	CapTSCDeadline   Cap = 72
	CapSignalMSI     Cap = 77
	CapImmediateExit Cap = 136
	CapCoalescedPIO  Cap = 162
	CapBinaryStatsFD Cap = 203
)

var capNames = map[Cap]string{
	CapIRQChip: "KVM_CAP_IRQCHIP", CapUserMemory: "KVM_CAP_USER_MEMORY", CapExtCPUID: "KVM_CAP_EXT_CPUID",
	CapNrVCPUs: "KVM_CAP_NR_VCPUS", CapIRQRouting: "KVM_CAP_IRQ_ROUTING", CapIRQFD: "KVM_CAP_IRQFD", CapPIT2: "KVM_CAP_PIT2",
	CapIOEventFD: "KVM_CAP_IOEVENTFD", CapGetTSCKHz: "KVM_CAP_GET_TSC_KHZ", CapMaxVCPUs: "KVM_CAP_MAX_VCPUS",
	CapTSCDeadline: "KVM_CAP_TSC_DEADLINE_TIMER", CapSignalMSI: "KVM_CAP_SIGNAL_MSI", CapImmediateExit: "KVM_CAP_IMMEDIATE_EXIT",
	CapBinaryStatsFD: "KVM_CAP_BINARY_STATS_FD", CapCoalescedMMIO: "KVM_CAP_COALESCED_MMIO", CapCoalescedPIO: "KVM_CAP_COALESCED_PIO",
}

// String returns the kvm.h name, e.g. "KVM_CAP_IRQCHIP".
func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return fmt.Sprintf("KVM capability %d", int(c))
}
