package kvm

import "golang.org/x/sys/unix"

// Ioctl request numbers (linux/kvm.h; KVMIO is 0xAE). Checked in abi_unsafe_test.go
// against the values docs/facts.md records from the kernel headers.
const (
	kvmGetAPIVersion         = 0xae00
	kvmCreateVM              = 0xae01
	kvmCheckExtension        = 0xae03
	kvmGetVCPUMmapSize       = 0xae04
	kvmGetSupportedCPUID     = 0xc008ae05
	kvmCreateVCPU            = 0xae41
	kvmSetUserMemoryRegion   = 0x4020ae46
	kvmSetTSSAddr            = 0xae47
	kvmSetIdentityMapAddr    = 0x4008ae48
	kvmCreateIRQChip         = 0xae60
	kvmIRQLine               = 0x4008ae61
	kvmRegisterCoalescedMMIO = 0x4010ae67
	kvmSetGSIRouting         = 0x4008ae6a
	kvmIRQFD                 = 0x4020ae76
	kvmCreatePIT2            = 0x4040ae77
	kvmIOEventFD             = 0x4040ae79
	kvmRun                   = 0xae80
	kvmGetRegs               = 0x8090ae81
	kvmSetRegs               = 0x4090ae82
	kvmGetSregs              = 0x8138ae83
	kvmSetSregs              = 0x4138ae84
	kvmSetMSRs               = 0x4008ae89
	kvmGetFPU                = 0x81a0ae8c
	kvmSetFPU                = 0x41a0ae8d
	kvmGetLAPIC              = 0x8400ae8e
	kvmSetLAPIC              = 0x4400ae8f
	kvmSetCPUID2             = 0x4008ae90
	kvmGetMPState            = 0x8004ae98
	kvmGetTSCKHz             = 0xaea3
	kvmSignalMSI             = 0x4020aea5
	kvmGetStatsFD            = 0xaece
)

// ioctl issues a KVM ioctl whose argument is a plain integer (or nothing).
func ioctl(fd, req, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, req, arg)
		if retry(req, errno) {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return r, nil
	}
}

// retry says whether to reissue an ioctl that a signal interrupted. The Go
// runtime signals its threads (SIGURG for preemption), and KVM_CREATE_VM,
// among others, gives up with EINTR when a signal is pending; only for
// KVM_RUN is EINTR an answer the caller wants.
func retry(req uintptr, errno unix.Errno) bool {
	return errno == unix.EINTR && req != kvmRun
}

// RunIoctls are the requests this package issues on VM and vCPU fds once
// every vCPU is created and configured: running the vCPUs, reading where
// they are (a snapshot), raising interrupts and (re)wiring irqfds,
// ioeventfds and MSI routes as the guest programs its devices. A process
// confined to a running VM (package seccomp) allows these and no other.
func RunIoctls() []uint64 {
	return []uint64{
		kvmRun, kvmGetRegs, kvmGetSregs, kvmGetLAPIC, kvmGetMPState,
		kvmIRQLine, kvmSetGSIRouting, kvmIRQFD, kvmIOEventFD, kvmSignalMSI,
	}
}
