package kvm

import (
	"encoding/binary"
	"fmt"
)

// ExitReason is kvm_run.exit_reason (KVM_EXIT_*).
type ExitReason uint32

// Exit reasons (KVM_EXIT_* in linux/kvm.h). govmm's vCPU loop handles the
// first group; the rest are named so that logs say what arrived.
const (
	ExitUnknown       ExitReason = 0
	ExitIO            ExitReason = 2
	ExitHLT           ExitReason = 5
	ExitMMIO          ExitReason = 6
	ExitShutdown      ExitReason = 8
	ExitFailEntry     ExitReason = 9
	ExitIntr          ExitReason = 10
	ExitInternalError ExitReason = 17
	ExitSystemEvent   ExitReason = 24

	ExitException     ExitReason = 1
	ExitHypercall     ExitReason = 3
	ExitDebug         ExitReason = 4
	ExitIRQWindowOpen ExitReason = 7
	ExitNMI           ExitReason = 16
	ExitX86RDMSR      ExitReason = 29
	ExitX86WRMSR      ExitReason = 30
	ExitX86BusLock    ExitReason = 33
	ExitNotify        ExitReason = 37

	// ExitBadData is not KVM's: the kvm_run page described an access that
	// does not fit in it (a bad size, length or data_offset). Treat it as
	// fatal for the vCPU.
	ExitBadData ExitReason = 1 << 31
)

// System event types in Exit.SystemEventType (KVM_SYSTEM_EVENT_*).
const (
	SystemEventShutdown = 1
	SystemEventReset    = 2
	SystemEventCrash    = 3
)

// ioOut is KVM_EXIT_IO_OUT in kvm_run.io.direction.
const ioOut = 1

var exitNames = map[ExitReason]string{
	ExitUnknown: "KVM_EXIT_UNKNOWN", ExitIO: "KVM_EXIT_IO", ExitHLT: "KVM_EXIT_HLT", ExitMMIO: "KVM_EXIT_MMIO",
	ExitShutdown: "KVM_EXIT_SHUTDOWN", ExitFailEntry: "KVM_EXIT_FAIL_ENTRY", ExitIntr: "KVM_EXIT_INTR",
	ExitInternalError: "KVM_EXIT_INTERNAL_ERROR", ExitSystemEvent: "KVM_EXIT_SYSTEM_EVENT",
	ExitException: "KVM_EXIT_EXCEPTION", ExitHypercall: "KVM_EXIT_HYPERCALL", ExitDebug: "KVM_EXIT_DEBUG",
	ExitIRQWindowOpen: "KVM_EXIT_IRQ_WINDOW_OPEN", ExitNMI: "KVM_EXIT_NMI", ExitX86RDMSR: "KVM_EXIT_X86_RDMSR",
	ExitX86WRMSR: "KVM_EXIT_X86_WRMSR", ExitX86BusLock: "KVM_EXIT_X86_BUS_LOCK", ExitNotify: "KVM_EXIT_NOTIFY",
	ExitBadData: "malformed kvm_run data",
}

// String returns the kvm.h name, e.g. "KVM_EXIT_IO".
func (r ExitReason) String() string {
	if n, ok := exitNames[r]; ok {
		return n
	}
	return fmt.Sprintf("KVM exit %d", uint32(r))
}

// Exit is a decoded kvm_run after KVM_RUN returned.
type Exit struct {
	Reason           ExitReason
	IO               IOExit   // Reason == ExitIO
	MMIO             MMIOExit // Reason == ExitMMIO
	SystemEventType  uint32   // Reason == ExitSystemEvent: KVM_SYSTEM_EVENT_*
	FailEntryReason  uint64   // Reason == ExitFailEntry
	InternalSuberror uint32   // Reason == ExitInternalError
}

// IOExit is a port access. Data aliases the kvm_run page: Size*Count bytes,
// which the handler fills for an IN.
type IOExit struct {
	Port  uint16
	Out   bool
	Size  int
	Count int
	Data  []byte
}

// MMIOExit is a memory access outside guest RAM. Data aliases kvm_run.
type MMIOExit struct {
	Addr  uint64
	Write bool
	Data  []byte
}

// Offsets into struct kvm_run (linux/kvm.h, x86).
const (
	runImmediateExit = 1
	runExitReason    = 8
	runUnion         = 32
	// minRunSize is sizeof(struct kvm_run) on x86: the header, the 256-byte
	// exit union, kvm_valid_regs/kvm_dirty_regs and the 2048-byte s.regs.
	minRunSize = 2352
)

// Exit decodes kvm_run. Offsets and lengths it reads are checked against the
// page, so a malformed page yields ExitBadData rather than a panic.
func (c *VCPU) Exit() Exit { return decodeExit(c.run) }

func decodeExit(run []byte) Exit {
	if len(run) < minRunSize {
		return Exit{Reason: ExitBadData}
	}
	le := binary.LittleEndian
	u := run[runUnion:]
	e := Exit{Reason: ExitReason(le.Uint32(run[runExitReason:]))}
	ok := true
	switch e.Reason {
	case ExitIO:
		e.IO, ok = decodeIO(run)
	case ExitMMIO:
		e.MMIO, ok = decodeMMIO(u)
	case ExitSystemEvent:
		e.SystemEventType = le.Uint32(u) // system_event.type
	case ExitFailEntry:
		e.FailEntryReason = le.Uint64(u) // fail_entry.hardware_entry_failure_reason
	case ExitInternalError:
		e.InternalSuberror = le.Uint32(u) // internal.suberror
	}
	if !ok {
		return Exit{Reason: ExitBadData}
	}
	return e
}

// decodeIO reads kvm_run.io: { __u8 direction; __u8 size; __u16 port;
// __u32 count; __u64 data_offset; }, the data being Size*Count bytes at
// data_offset from the start of kvm_run.
func decodeIO(run []byte) (IOExit, bool) {
	le := binary.LittleEndian
	u := run[runUnion:]
	size, count, off := uint64(u[1]), uint64(le.Uint32(u[4:])), le.Uint64(u[8:])
	if size != 1 && size != 2 && size != 4 || count == 0 ||
		off > uint64(len(run)) || size*count > uint64(len(run))-off {
		return IOExit{}, false
	}
	end := off + size*count
	return IOExit{Port: le.Uint16(u[2:]), Out: u[0] == ioOut, Size: int(size), Count: int(count),
		Data: run[off:end:end]}, true
}

// decodeMMIO reads kvm_run.mmio: { __u64 phys_addr; __u8 data[8];
// __u32 len; __u8 is_write; }.
func decodeMMIO(u []byte) (MMIOExit, bool) {
	le := binary.LittleEndian
	n := le.Uint32(u[16:])
	if n == 0 || n > 8 {
		return MMIOExit{}, false
	}
	return MMIOExit{Addr: le.Uint64(u), Write: u[20] != 0, Data: u[8 : 8+n : 8+n]}, true
}
