// Package uring is the small part of Linux's io_uring a disk needs: vectored
// reads and writes, data syncs and no-ops, submitted without waiting and
// completed through an eventfd. A ring is made for one file and locked to
// it before it can run (restrict_unsafe.go): it performs those four
// operations on that file and nothing else, so seccomp, which does not see
// what a ring does, loses nothing to it. A device submits with a raw system call (the kernel
// never waits for the disk inside it: what would block goes to the kernel's
// own io-wq threads) and learns of completions in the Go netpoller, so a disk
// request, like a network one, never enters the Go scheduler's syscall
// state. That state wakes the runtime's monitor thread, whose wake-ups
// preempt the guest's vCPU (see package rawsys).
//
// Layouts and constants are from include/uapi/linux/io_uring.h.
package uring

import "errors"

// Opcodes (enum io_uring_op).
const (
	opNop    = 0
	opReadv  = 1
	opWritev = 2
	opFsync  = 3
	opOpenat = 18 // not allowed on a ring made here; tests try it

	fsyncDatasync = 1 << 0 // IORING_FSYNC_DATASYNC: fdatasync, not fsync

	// sqeFixedFile (IOSQE_FIXED_FILE) makes an SQE's fd an index into
	// the ring's registered files. Every SQE of a ring made here sets it,
	// and the ring refuses one that does not.
	sqeFixedFile = 1 << 0
)

// setupRDisabled (IORING_SETUP_R_DISABLED, Linux 5.10) creates a ring that
// accepts no submission until IORING_REGISTER_ENABLE_RINGS: the window in
// which restrictions can be registered.
const setupRDisabled = 1 << 6

// io_uring_register opcodes (IORING_REGISTER_*).
const (
	registerFiles        = 2
	registerEventFD      = 4
	registerRestrictions = 11
	registerEnableRings  = 12
)

// Restriction kinds (IORING_RESTRICTION_*), the opcode of a restriction.
const (
	restrictRegisterOp       = 0
	restrictSQEOp            = 1
	restrictSQEFlagsAllowed  = 2
	restrictSQEFlagsRequired = 3
)

// restriction mirrors struct io_uring_restriction (16 bytes): arg is the
// union of register_op, sqe_op and sqe_flags.
type restriction struct {
	opcode uint16
	arg    uint8
	resv   uint8
	resv2  [3]uint32
}

// maxEntries is the most SQEs io_uring_setup takes (IORING_MAX_ENTRIES).
const maxEntries = 32768

// Dropped is the tag of the completion of an entry a failed Submit left
// behind: it was turned into a no-op, which completes whenever the ring is
// next submitted to. Callers ignore it.
const Dropped = ^uint64(0)

// Offsets to mmap the rings at (IORING_OFF_*).
const (
	offSQRing = 0
	offSQEs   = 0x10000000
)

const (
	featSingleMmap   = 1 << 0 // IORING_FEAT_SINGLE_MMAP: one mapping for both rings
	featSubmitStable = 1 << 2 // IORING_FEAT_SUBMIT_STABLE: iovecs are copied at submission
)

// sqe mirrors struct io_uring_sqe (64 bytes).
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	rwFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

// cqe mirrors struct io_uring_cqe (16 bytes, without IORING_SETUP_CQE32).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// sqringOffsets mirrors struct io_sqring_offsets (40 bytes).
type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

// cqringOffsets mirrors struct io_cqring_offsets (40 bytes).
type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// params mirrors struct io_uring_params (120 bytes).
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqringOffsets
	cqOff                                                                  cqringOffsets
}

// ErrUnsupported is wrapped by New when the kernel has no io_uring, forbids
// it (kernel.io_uring_disabled, a seccomp filter) or lacks a feature used
// here, restrictions (Linux 5.10) among them. Callers fall back to blocking
// system calls or say what to change.
var ErrUnsupported = errors.New("io_uring is not available")

// Completion is one finished operation: the tag given at submission and the
// result, a byte count or a negated errno. -ECANCELED means the kernel gave
// up on the request before starting it (it could not start a worker thread
// for it): the caller redoes it.
type Completion struct {
	Tag uint64
	Res int32
}
