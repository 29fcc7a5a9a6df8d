// Package eventfd wraps Linux eventfds, the counters KVM signals through
// (ioeventfd: a guest write becomes a count) and is signalled through (irqfd:
// a count becomes an interrupt), so device goroutines wait on them without a
// VM exit reaching govmm.
package eventfd

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// EventFD is one eventfd. Read parks the goroutine in the Go netpoller, so a
// waiting device costs no thread; Close wakes it with os.ErrClosed.
type EventFD struct {
	f *os.File
}

// New returns a non-blocking, close-on-exec eventfd with a zero counter.
func New() (*EventFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	return &EventFD{f: os.NewFile(uintptr(fd), "eventfd")}, nil
}

// Read waits until the counter is non-zero, then returns it and resets it to zero.
func (e *EventFD) Read() (uint64, error) {
	var b [8]byte
	if _, err := e.f.Read(b[:]); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint64(b[:]), nil
}

// Write adds v to the counter, waking a reader.
func (e *EventFD) Write(v uint64) error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], v)
	_, err := e.f.Write(b[:])
	return err
}

// FD is the descriptor to hand to KVM_IOEVENTFD or KVM_IRQFD. It stays valid
// until Close.
func (e *EventFD) FD() int { return int(e.f.Fd()) }

// Close releases the eventfd and wakes a blocked Read.
func (e *EventFD) Close() error { return e.f.Close() }
