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
