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
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/internal/rawsys"
)

// EventFD is one eventfd. Read parks the goroutine in the Go netpoller, so a
// waiting device costs no thread; Close wakes it with os.ErrClosed. Any
// goroutine may call Read and Write; concurrent Reads take turns.
type EventFD struct {
	f      *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// The calls handed to rc are made once, in New: a closure made per
	// call escapes into the RawConn, an allocation per kick and per
	// interrupt. Each mutex guards its call's buffer and result.
	rmu     sync.Mutex
	rbuf    [8]byte
	rerr    error
	readFn  func(fd uintptr) bool
	wmu     sync.Mutex
	wbuf    [8]byte
	werr    error
	writeFn func(fd uintptr) bool
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
	e := &EventFD{f: f, rc: rc}
	e.readFn, e.writeFn = e.readRaw, e.writeRaw
	return e, nil
}

// Read waits until the counter is non-zero, then returns it and resets it to
// zero. The read itself is a raw system call (package rawsys): it cannot
// block, and a device reads its kick at the start of every request.
func (e *EventFD) Read() (uint64, error) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	err := e.rc.Read(e.readFn)
	if err = e.check(err, e.rerr); err != nil {
		return 0, fmt.Errorf("read eventfd: %w", err)
	}
	return binary.NativeEndian.Uint64(e.rbuf[:]), nil
}

// readRaw is Read's call on the descriptor; false (EAGAIN) waits in the
// netpoller.
func (e *EventFD) readRaw(fd uintptr) bool {
	_, e.rerr = rawsys.Read(fd, e.rbuf[:])
	return !errors.Is(e.rerr, unix.EAGAIN)
}

// Write adds v to the counter, waking a reader. It is a raw system call, like
// Read: an irqfd is written once per interrupt. It fails with EAGAIN only if
// the counter would overflow, which means the reader already has a wake-up.
func (e *EventFD) Write(v uint64) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	binary.NativeEndian.PutUint64(e.wbuf[:], v)
	err := e.rc.Write(e.writeFn)
	if err = e.check(err, e.werr); err != nil {
		return fmt.Errorf("write eventfd: %w", err)
	}
	return nil
}

// writeRaw is Write's call on the descriptor, which never waits.
func (e *EventFD) writeRaw(fd uintptr) bool {
	_, e.werr = rawsys.Write(fd, e.wbuf[:])
	return true
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
