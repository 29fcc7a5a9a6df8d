package uring

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring is one io_uring instance. One goroutine prepares and submits, and
// another (or the same) reaps: the submission queue and the completion queue
// are each single-owner.
type Ring struct {
	fd int

	rings []byte // the SQ and CQ ring mapping (one, with FEAT_SINGLE_MMAP)
	sqes  []byte // the SQE array mapping

	sqHead, sqTail *uint32 // the kernel advances head; we advance tail
	sqMask         uint32
	sqArray        []uint32
	sqeArr         []sqe
	prepared       uint32 // SQEs filled in since the last successful Submit

	cqHead, cqTail *uint32 // we advance head; the kernel advances tail
	cqMask         uint32
	cqeArr         []cqe
}

// New sets up a ring with room for entries submissions in flight (at most
// 32768) and twice as many completions, for the one file fd: every
// operation names it by its index in the ring's registered files. The ring
// signals the eventfd eventFD when it posts completions. Before it accepts
// a submission it is restricted (see restrict): New is the only point where
// io_uring_setup and io_uring_register are called, so a process can make
// its rings and then forbid both system calls.
func New(entries uint32, fd, eventFD int) (*Ring, error) {
	if entries == 0 || entries > maxEntries {
		return nil, fmt.Errorf("io_uring_setup: %d entries, want 1 to %d", entries, maxEntries)
	}
	p := params{flags: setupRDisabled}
	ringFD, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	switch errno {
	case 0:
	case unix.ENOSYS, unix.EPERM, unix.EACCES:
		return nil, fmt.Errorf("%w: io_uring_setup: %w", ErrUnsupported, errno)
	case unix.EINVAL:
		// The size is checked above: the flag is what a kernel
		// before 5.10 does not know.
		return nil, fmt.Errorf("%w: io_uring_setup: %w: the kernel cannot restrict a ring (IORING_SETUP_R_DISABLED, Linux 5.10)", ErrUnsupported, errno)
	default:
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &Ring{fd: int(ringFD)}
	if p.features&featSingleMmap == 0 || p.features&featSubmitStable == 0 {
		r.Close()
		return nil, fmt.Errorf("%w: the kernel lacks IORING_FEAT_SINGLE_MMAP or IORING_FEAT_SUBMIT_STABLE (Linux 5.5)", ErrUnsupported)
	}
	err := r.mapRings(&p)
	if err == nil {
		err = r.restrict(fd, eventFD)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Ring) mapRings(p *params) error {
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{})))
	rings, err := unix.Mmap(r.fd, offSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap io_uring rings: %w", err)
	}
	r.rings = rings
	sqes, err := unix.Mmap(r.fd, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(sqe{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap io_uring SQEs: %w", err)
	}
	r.sqes = sqes
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&rings[off]) }
	r.sqHead, r.sqTail = (*uint32)(at(p.sqOff.head)), (*uint32)(at(p.sqOff.tail))
	r.sqMask = *(*uint32)(at(p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(at(p.sqOff.array)), p.sqEntries)
	r.sqeArr = unsafe.Slice((*sqe)(unsafe.Pointer(&sqes[0])), p.sqEntries)
	r.cqHead, r.cqTail = (*uint32)(at(p.cqOff.head)), (*uint32)(at(p.cqOff.tail))
	r.cqMask = *(*uint32)(at(p.cqOff.ringMask))
	r.cqeArr = unsafe.Slice((*cqe)(at(p.cqOff.cqes)), p.cqEntries)
	// SQEs are used in ring order, so the indirection array is the identity.
	for i := range r.sqArray {
		r.sqArray[i] = uint32(i)
	}
	return nil
}

// next returns the next free SQE, cleared, or nil if the queue is full.
func (r *Ring) next() *sqe {
	tail := *r.sqTail + r.prepared
	if tail-atomic.LoadUint32(r.sqHead) >= uint32(len(r.sqeArr)) {
		return nil
	}
	e := &r.sqeArr[tail&r.sqMask]
	// The ring's file is registered file 0 (restrict).
	*e = sqe{flags: sqeFixedFile}
	r.prepared++
	return e
}

// PrepareVectored queues a readv (pwritev if write) of the buffers iov
// describes at byte offset off of the ring's file. It reports false if the submission
// queue is full: Submit, then prepare again. iov must stay untouched until
// Submit returns; the buffers it points to, until the completion arrives.
func (r *Ring) PrepareVectored(write bool, iov []unix.Iovec, off int64, tag uint64) bool {
	e := r.next()
	if e == nil {
		return false
	}
	e.opcode = opReadv
	if write {
		e.opcode = opWritev
	}
	e.off = uint64(off)
	if len(iov) > 0 {
		e.addr = uint64(uintptr(unsafe.Pointer(&iov[0])))
	}
	e.len = uint32(len(iov))
	e.userData = tag
	return true
}

// PrepareDatasync queues an fdatasync of the ring's file. The kernel always
// runs it on an io-wq thread, so it never holds up Submit however long the
// disk takes.
func (r *Ring) PrepareDatasync(tag uint64) bool {
	e := r.next()
	if e == nil {
		return false
	}
	e.opcode = opFsync
	e.rwFlags = fsyncDatasync
	e.userData = tag
	return true
}

// PrepareNop queues an operation that completes at once with result 0: a
// way to hand a result computed at submission to the reaping goroutine.
func (r *Ring) PrepareNop(tag uint64) bool {
	e := r.next()
	if e == nil {
		return false
	}
	e.opcode = opNop
	e.userData = tag
	return true
}

// Submit hands the prepared operations to the kernel. It is a raw system
// call: without IORING_ENTER_GETEVENTS io_uring_enter never waits for I/O.
// It returns once the kernel has consumed every prepared entry. If it
// fails, the entries the kernel did not take (Unsubmitted) become no-ops
// tagged Dropped: a ring outlives its user's errors (a disk keeps its ring
// across device resets), and the next Submit must not start a transfer
// into buffers its caller has given up.
func (r *Ring) Submit() error {
	if r.prepared == 0 {
		return nil
	}
	// Publishing the tail is a store-release: the SQEs written before it
	// are visible to the kernel once it sees the new tail.
	atomic.StoreUint32(r.sqTail, *r.sqTail+r.prepared)
	r.prepared = 0
	for {
		toSubmit := *r.sqTail - atomic.LoadUint32(r.sqHead)
		if toSubmit == 0 {
			return nil
		}
		_, _, errno := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), 0, 0, 0, 0)
		// Each call consumes at least one entry (one that fails to
		// start completes with its error), so this ends. EAGAIN (no
		// kernel memory) and EBUSY (completions backed up, which the
		// ring's size rules out here) are returned.
		if errno != 0 && errno != unix.EINTR {
			r.dropUnsubmitted()
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
	}
}

// dropUnsubmitted turns the entries the kernel has not taken into no-ops
// that touch no memory. Without SQPOLL the kernel reads entries only inside
// io_uring_enter, which only the submitting goroutine calls.
func (r *Ring) dropUnsubmitted() {
	for i := atomic.LoadUint32(r.sqHead); i != *r.sqTail; i++ {
		r.sqeArr[i&r.sqMask] = sqe{opcode: opNop, flags: sqeFixedFile, userData: Dropped}
	}
}

// Unsubmitted is how many prepared entries the kernel has not taken: after
// a failed Submit, those that will never complete.
func (r *Ring) Unsubmitted() int {
	return int(*r.sqTail + r.prepared - atomic.LoadUint32(r.sqHead))
}

// Reap hands every posted completion to fn, oldest first, and returns how
// many there were.
func (r *Ring) Reap(fn func(Completion)) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail) // load-acquire: the CQEs before tail are written
	n := 0
	for ; head != tail; head++ {
		c := r.cqeArr[head&r.cqMask]
		fn(Completion{Tag: c.userData, Res: c.res})
		n++
	}
	atomic.StoreUint32(r.cqHead, head) // the kernel may reuse the entries
	return n
}

// Close unmaps the rings and closes the ring. Operations still in flight are
// cancelled or waited for by the kernel; callers reap all of theirs first,
// since their buffers must outlive them.
func (r *Ring) Close() error {
	var errs []error
	for _, m := range [][]byte{r.sqes, r.rings} {
		if m != nil {
			errs = append(errs, unix.Munmap(m))
		}
	}
	r.sqes, r.rings = nil, nil
	if r.fd >= 0 {
		errs = append(errs, unix.Close(r.fd))
		r.fd = -1
	}
	return errors.Join(errs...)
}
