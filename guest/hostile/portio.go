package hostile

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// The amd64 port instructions, in portio_amd64.s. The guest kernel has no
// /dev/port (CONFIG_DEVPORT is off), and that would be bytes only anyway.
func inb(port uint16) uint8
func inw(port uint16) uint16
func inl(port uint16) uint32
func outb(port uint16, v uint8)
func outw(port uint16, v uint16)
func outl(port uint16, v uint32)

// withPorts runs f on one thread that may use every I/O port: Linux keeps
// the I/O privilege level per thread.
func withPorts(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Iopl(3); err != nil {
		return fmt.Errorf("iopl(3): %w", err)
	}
	defer unix.Iopl(0) //nolint:errcheck // dropping a privilege this thread had
	return f()
}

// portIn reads n (1, 2 or 4) bytes at port.
func portIn(port uint16, n int) uint32 {
	switch n {
	case 1:
		return uint32(inb(port))
	case 2:
		return uint32(inw(port))
	}
	return inl(port)
}

// portOut writes the low n (1, 2 or 4) bytes of v at port.
func portOut(port uint16, n int, v uint32) {
	switch n {
	case 1:
		outb(port, uint8(v))
	case 2:
		outw(port, uint16(v))
	default:
		outl(port, v)
	}
}
