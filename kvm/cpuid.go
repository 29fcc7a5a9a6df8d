package kvm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// cpuidBatch is the first buffer size tried for KVM_GET_SUPPORTED_CPUID; a
// typical host reports 50–100 leaves.
const cpuidBatch = 128

// maxCPUIDEntries bounds the buffer growth; KVM's own limit
// (KVM_MAX_CPUID_ENTRIES) is 256.
const maxCPUIDEntries = 4096

// Leaf 1 ECX bit of the TSC-deadline mode of the local APIC timer.
const (
	cpuidLeafFeatures   = 0x1
	cpuidTSCDeadlineBit = 1 << 24
)

// SupportedCPUID returns the CPUID leaves KVM can offer a guest on this host
// (KVM_GET_SUPPORTED_CPUID), doubling its buffer while KVM answers E2BIG.
// KVM emulates the TSC-deadline timer without listing it there (it reports
// KVM_CAP_TSC_DEADLINE_TIMER instead); SupportedCPUID adds the bit, as QEMU
// and Firecracker do, so guests program their timer with one MSR write
// instead of falling back to the one-shot count-down mode.
func (s *System) SupportedCPUID() ([]CPUIDEntry, error) {
	entries, err := s.supportedCPUID()
	if err != nil {
		return nil, err
	}
	if n, err := s.CheckExtension(CapTSCDeadline); err != nil {
		return nil, err
	} else if n > 0 {
		for i := range entries {
			if entries[i].Function == cpuidLeafFeatures {
				entries[i].ECX |= cpuidTSCDeadlineBit
			}
		}
	}
	return entries, nil
}

func (s *System) supportedCPUID() ([]CPUIDEntry, error) {
	for n := cpuidBatch; n <= maxCPUIDEntries; n *= 2 {
		buf := newCPUID2(n)
		_, err := ioctlPtr(s.fd(), kvmGetSupportedCPUID, &buf[0])
		if errors.Is(err, unix.E2BIG) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
		}
		return cpuid2Entries(buf), nil
	}
	return nil, fmt.Errorf("KVM_GET_SUPPORTED_CPUID: more than %d entries", maxCPUIDEntries)
}

// SetCPUID sets the vCPU's CPUID table (KVM_SET_CPUID2). Call it before the
// first Run: KVM refuses changes after that.
func (c *VCPU) SetCPUID(entries []CPUIDEntry) error {
	if len(entries) > maxCPUIDEntries {
		return fmt.Errorf("KVM_SET_CPUID2: %d entries, at most %d", len(entries), maxCPUIDEntries)
	}
	buf := newCPUID2(len(entries))
	copy(cpuid2View(buf), entries)
	_, err := ioctlPtr(c.fd(), kvmSetCPUID2, &buf[0])
	return wrap(fmt.Sprintf("KVM_SET_CPUID2 (%d entries)", len(entries)), err)
}
