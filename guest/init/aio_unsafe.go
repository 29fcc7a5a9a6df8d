package main

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// aioContext is a Linux native AIO context (io_setup(2)): one thread keeps
// several O_DIRECT reads in flight, as fio's libaio engine does, instead of
// one blocked thread per read. Its calls are raw, like rawPositional's.
type aioContext struct {
	id     uintptr
	iocbs  []iocb
	ptrs   []*iocb
	events []ioEvent
}

// iocb is struct iocb of include/uapi/linux/aio_abi.h (64 bytes,
// little-endian field order).
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   int32
	opcode    uint16
	reqPrio   int16
	fd        uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resFD     uint32
}

// ioEvent is struct io_event (32 bytes).
type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

const iocbCmdPread = 0 // IOCB_CMD_PREAD

// aioRead is one read to submit: buf at off of fd, reported with tag.
type aioRead struct {
	fd  int
	buf []byte
	off int64
	tag uint64
}

// newAIO sets up a context for up to depth requests in flight.
func newAIO(depth int) (*aioContext, error) {
	a := &aioContext{iocbs: make([]iocb, depth), ptrs: make([]*iocb, depth), events: make([]ioEvent, depth)}
	if _, _, errno := unix.RawSyscall(unix.SYS_IO_SETUP, uintptr(depth), uintptr(unsafe.Pointer(&a.id)), 0); errno != 0 {
		return nil, fmt.Errorf("io_setup: %w", errno)
	}
	return a, nil
}

// close cancels or waits for what is in flight and frees the context.
func (a *aioContext) close() error {
	if _, _, errno := unix.RawSyscall(unix.SYS_IO_DESTROY, a.id, 0, 0); errno != 0 {
		return fmt.Errorf("io_destroy: %w", errno)
	}
	return nil
}

// submit queues reads, at most the context's depth less those in flight.
// The kernel copies each iocb, so they are reused at once; the buffers
// must stay until their completion.
func (a *aioContext) submit(reads []aioRead) error {
	if len(reads) > len(a.iocbs) {
		return fmt.Errorf("%d reads at once, more than the depth %d", len(reads), len(a.iocbs))
	}
	for i, r := range reads {
		a.iocbs[i] = iocb{data: r.tag, opcode: iocbCmdPread, fd: uint32(r.fd),
			buf: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(r.buf)))), nbytes: uint64(len(r.buf)), offset: r.off}
		a.ptrs[i] = &a.iocbs[i]
	}
	for done := 0; done < len(reads); {
		n, _, errno := unix.RawSyscall(unix.SYS_IO_SUBMIT, a.id, uintptr(len(reads)-done), uintptr(unsafe.Pointer(&a.ptrs[done])))
		switch {
		case errno == unix.EINTR || errno == unix.EAGAIN:
			continue
		case errno != 0:
			return fmt.Errorf("io_submit: %w", errno)
		}
		done += int(n)
	}
	return nil
}

// wait blocks until at least min reads completed, and calls done with the
// tag and result (bytes read, or a negated errno) of each that did.
func (a *aioContext) wait(min int, done func(tag uint64, res int64)) error {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_IO_GETEVENTS, a.id, uintptr(min), uintptr(len(a.events)),
			uintptr(unsafe.Pointer(&a.events[0])), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return fmt.Errorf("io_getevents: %w", errno)
		}
		for _, e := range a.events[:n] {
			done(e.data, e.res)
		}
		return nil
	}
}
