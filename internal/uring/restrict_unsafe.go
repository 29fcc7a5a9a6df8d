package uring

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// allowedOps are the only operations a ring made here runs: what a disk
// submits. A discard or write-zeroes runs on the device's goroutine and its
// result travels through a no-op.
var allowedOps = [...]uint8{opNop, opReadv, opWritev, opFsync}

// restrict registers the ring's eventfd and its one file, then locks the
// ring (IORING_REGISTER_RESTRICTIONS, Linux 5.10) and enables it. From then
// on the kernel refuses, with -EACCES in the completion, any operation but
// allowedOps and any entry without IOSQE_FIXED_FILE, so an entry can reach
// no file but fd; and it refuses every io_uring_register, none being
// allowed. Registration is only possible while the ring is disabled, so
// nothing can loosen this later.
func (r *Ring) restrict(fd, eventFD int) error {
	efd := int32(eventFD)
	if err := r.register(registerEventFD, unsafe.Pointer(&efd), 1); err != nil {
		return fmt.Errorf("io_uring_register eventfd: %w", err)
	}
	files := [1]int32{int32(fd)}
	if err := r.register(registerFiles, unsafe.Pointer(&files[0]), 1); err != nil {
		return fmt.Errorf("io_uring_register files: %w", err)
	}
	res := restrictions()
	if err := r.register(registerRestrictions, unsafe.Pointer(&res[0]), len(res)); err != nil {
		if errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("%w: %w: the kernel cannot restrict a ring (Linux 5.10)", ErrUnsupported, err)
		}
		return fmt.Errorf("io_uring_register restrictions: %w", err)
	}
	if err := r.register(registerEnableRings, nil, 0); err != nil {
		return fmt.Errorf("io_uring_register enable: %w", err)
	}
	return nil
}

// restrictions is the list restrict registers: each allowed operation, and
// IOSQE_FIXED_FILE required of every entry (with no other flag allowed).
func restrictions() []restriction {
	res := make([]restriction, 0, len(allowedOps)+1)
	for _, op := range allowedOps {
		res = append(res, restriction{opcode: restrictSQEOp, arg: op})
	}
	return append(res, restriction{opcode: restrictSQEFlagsRequired, arg: sqeFixedFile})
}

func (r *Ring) register(op uintptr, arg unsafe.Pointer, n int) error {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), op, uintptr(arg), uintptr(n), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
