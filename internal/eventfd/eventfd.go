// Package eventfd wraps Linux eventfds, the counters KVM signals through
// (ioeventfd: a guest write becomes a count) and is signalled through (irqfd:
// a count becomes an interrupt), so device goroutines wait on them without a
// VM exit reaching govmm.
package eventfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/internal/rawsys"
)

// EventFD is one eventfd. Read parks the goroutine in the Go netpoller, so a
// waiting device costs no thread; Close wakes it with os.ErrClosed.
type EventFD struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool
}

// New returns a non-blocking, close-on-exec eventfd with a zero counter.
func New() (*EventFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create eventfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "eventfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &EventFD{f: f, rc: rc}, nil
}

// Read waits until the counter is non-zero, then returns it and resets it to
// zero. The read itself is a raw system call (package rawsys): it cannot
// block, and a device reads its kick at the start of every request.
func (e *EventFD) Read() (uint64, error) {
	var b [8]byte
	var rerr error
	err := e.rc.Read(func(fd uintptr) bool {
		_, rerr = rawsys.Read(fd, b[:])
		return !errors.Is(rerr, unix.EAGAIN) // EAGAIN: wait in the netpoller
	})
	if err = e.check(err, rerr); err != nil {
		return 0, fmt.Errorf("read eventfd: %w", err)
	}
	return binary.NativeEndian.Uint64(b[:]), nil
}

// Write adds v to the counter, waking a reader. It is a raw system call, like
// Read: an irqfd is written once per interrupt. It fails with EAGAIN only if
// the counter would overflow, which means the reader already has a wake-up.
func (e *EventFD) Write(v uint64) error {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], v)
	var werr error
	err := e.rc.Write(func(fd uintptr) bool {
		_, werr = rawsys.Write(fd, b[:])
		return true
	})
	if err = e.check(err, werr); err != nil {
		return fmt.Errorf("write eventfd: %w", err)
	}
	return nil
}

// check merges the RawConn's error and the system call's, and reports a
// closed eventfd as os.ErrClosed, as os.File's own methods do.
func (e *EventFD) check(connErr, callErr error) error {
	switch {
	case connErr != nil && e.closed.Load():
		return os.ErrClosed
	case connErr != nil:
		return connErr
	}
	return callErr
}

// FD is the descriptor to hand to KVM_IOEVENTFD or KVM_IRQFD. It stays valid
// until Close.
func (e *EventFD) FD() int { return int(e.f.Fd()) }

// Close releases the eventfd and wakes a blocked Read.
func (e *EventFD) Close() error {
	e.closed.Store(true)
	return e.f.Close()
}
