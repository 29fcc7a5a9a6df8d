package uring

import (
	"testing"
	"unsafe"
)

// The mirrored structs must match include/uapi/linux/io_uring.h.
func TestStructSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"io_uring_sqe", unsafe.Sizeof(sqe{}), 64},
		{"io_uring_cqe", unsafe.Sizeof(cqe{}), 16},
		{"io_sqring_offsets", unsafe.Sizeof(sqringOffsets{}), 40},
		{"io_cqring_offsets", unsafe.Sizeof(cqringOffsets{}), 40},
		{"io_uring_params", unsafe.Sizeof(params{}), 120},
		{"io_uring_sqe.user_data offset", unsafe.Offsetof(sqe{}.userData), 32},
		{"io_uring_params.sq_off offset", unsafe.Offsetof(params{}.sqOff), 40},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.name, c.got, c.want)
		}
	}
}

// The restriction ABI (Linux 5.10), from include/uapi/linux/io_uring.h: a
// wrong number here would restrict nothing, or the wrong thing.
func TestRestrictionABI(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct io_uring_restriction)", unsafe.Sizeof(restriction{}), 16},
		{"io_uring_restriction.register_op/sqe_op/sqe_flags offset", unsafe.Offsetof(restriction{}.arg), 2},
		{"io_uring_restriction.resv2 offset", unsafe.Offsetof(restriction{}.resv2), 4},
		{"io_uring_sqe.flags offset", unsafe.Offsetof(sqe{}.flags), 1},
		{"IORING_SETUP_R_DISABLED", setupRDisabled, 1 << 6},
		{"IORING_REGISTER_FILES", registerFiles, 2},
		{"IORING_REGISTER_EVENTFD", registerEventFD, 4},
		{"IORING_REGISTER_RESTRICTIONS", registerRestrictions, 11},
		{"IORING_REGISTER_ENABLE_RINGS", registerEnableRings, 12},
		{"IORING_RESTRICTION_REGISTER_OP", restrictRegisterOp, 0},
		{"IORING_RESTRICTION_SQE_OP", restrictSQEOp, 1},
		{"IORING_RESTRICTION_SQE_FLAGS_ALLOWED", restrictSQEFlagsAllowed, 2},
		{"IORING_RESTRICTION_SQE_FLAGS_REQUIRED", restrictSQEFlagsRequired, 3},
		{"IOSQE_FIXED_FILE", sqeFixedFile, 1},
		{"IORING_OP_NOP", opNop, 0},
		{"IORING_OP_READV", opReadv, 1},
		{"IORING_OP_WRITEV", opWritev, 2},
		{"IORING_OP_FSYNC", opFsync, 3},
		{"IORING_OP_OPENAT", opOpenat, 18},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}
