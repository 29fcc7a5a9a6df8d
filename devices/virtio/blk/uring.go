package blk

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/internal/rawsys"
	"github.com/govmm/govmm/internal/uring"
	"github.com/govmm/govmm/memory"
)

// diskRing is one request queue's io_uring. A disk makes its rings when it
// opens, while the VM is built: govmm's seccomp filter then forbids
// io_uring_setup, and each ring is restricted to the disk's file and to the
// operations a disk submits (package uring). A ring serves every activation
// of its queue until Close; a reset drains it first (see completer), so
// nothing from before a reset completes after it.
type diskRing struct {
	ring *uring.Ring
	done *eventfd.EventFD // the ring signals completions here

	// slots holds each request in flight by its head descriptor, which the
	// driver may not offer again until the chain is used (virtio 1.2
	// §2.7.13.2): a busy slot found again is a broken driver.
	slots []slot
	// lost is set when a completer stopped with requests in flight, which
	// only a closed eventfd causes: their completions could land in a later
	// activation's slots, so the queue falls back to blocking calls.
	lost bool
}

// newDiskRing makes a restricted ring for the image fd, or returns an error
// wrapping uring.ErrUnsupported if the host cannot.
func newDiskRing(fd int) (*diskRing, error) {
	done, err := eventfd.New()
	if err != nil {
		return nil, err
	}
	ring, err := uring.New(queueSize, fd, done.FD())
	if err != nil {
		done.Close()
		return nil, err
	}
	return &diskRing{ring: ring, done: done, slots: make([]slot, queueSize)}, nil
}

func (dr *diskRing) close() error {
	return errors.Join(dr.ring.Close(), dr.done.Close())
}

// ringQueue serves one request queue through io_uring with two goroutines:
// the submitter waits for kicks, parses chains and submits their reads and
// writes; the completer waits for completions, writes each status and
// returns the chain. Neither makes a system call that enters the Go
// scheduler's syscall state on the data path (package uring says why).
// Flushes go to the ring too: fdatasync waits for the disk, and the queue
// must go on taking reads meanwhile. The other requests are rare and run on
// the submitter, their result handed to the completer through a no-op.
type ringQueue struct {
	d   *Device
	q   *virtio.Queue
	mem *memory.RAM
	lim limits
	*diskRing

	inFlight atomic.Int32
	closing  atomic.Bool // the submitter stopped: drain, then exit

	// Each goroutine's room for the requests it runs with blocking calls.
	submitScratch, completeScratch scratch
}

// slot is one request in flight. The submitter fills it while busy is false
// and then sets busy; the completer reads it after the completion and clears
// busy before returning the chain: busy is the hand-over.
type slot struct {
	busy    atomic.Bool
	status  memory.GuestAddress
	written uint32
	result  byte // the status, for a request the submitter ran
	rw      bool // a read or write submitted to the ring
	sync    bool // a flush submitted to the ring
	write   bool
	off     int64
	want    int
	bufs    [][]byte
	iovecs  []unix.Iovec
}

func newRingQueue(d *Device, q *virtio.Queue, lim limits, dr *diskRing) *ringQueue {
	return &ringQueue{d: d, q: q, mem: q.Mem(), lim: lim, diskRing: dr}
}

// submitter takes chains until the queue is stopped or broken, then tells
// the completer to finish.
func (r *ringQueue) submitter() {
	defer r.d.wg.Done()
	defer func() {
		// Requests prepared before the stop still go to the kernel, so
		// each one in flight completes; if the kernel refuses them,
		// submit stops counting them.
		if err := r.submit(); err != nil {
			r.d.log.Warn("virtio-blk submit on stop failed", "err", err)
		}
		r.closing.Store(true)
		if err := r.done.Write(1); err != nil {
			r.d.log.Warn("virtio-blk completer wake-up failed", "err", err)
		}
	}()
	for {
		for {
			c, ok, err := r.q.Pop()
			if err != nil || !ok {
				if err != nil {
					return
				}
				break
			}
			if err := r.start(c); err != nil {
				r.q.Fail(err)
				return
			}
		}
		if err := r.submit(); err != nil {
			r.q.Fail(err)
			return
		}
		if err := r.q.Wait(); err != nil {
			return
		}
	}
}

// start parses one chain and queues it: a read or write for the ring, or the
// result of a request run here.
func (r *ringQueue) start(c virtio.Chain) error {
	req, err := parse(r.mem, c, r.lim, &r.submitScratch.parse)
	if err != nil {
		return err
	}
	if int(c.Head) >= len(r.slots) || r.slots[c.Head].busy.Load() {
		return fmt.Errorf("the driver offered descriptor %d again before the device used it", c.Head)
	}
	s := &r.slots[c.Head]
	s.status, s.written, s.rw = req.status.Addr, req.written, false
	s.sync = req.result == statusOK && req.kind == typeFlush
	if req.result == statusOK && (req.kind == typeIn || req.kind == typeOut) {
		bufs, err := appendHostSlices(s.bufs[:0], r.mem, req.data)
		s.bufs = bufs
		if err != nil {
			r.d.log.Warn("virtio-blk request failed", "type", req.kind, "err", err)
			req.result = statusIOErr
		} else if want := totalBytes(bufs); want > 0 && len(bufs) <= iovMax {
			s.rw, s.write, s.off, s.want = true, req.kind == typeOut, req.offset, want
			s.iovecs = rawsys.AppendIovecs(s.iovecs[:0], bufs)
		}
		// Otherwise (nothing to move, or more runs than one call takes,
		// which seg_max rules out) it runs here.
	}
	if !s.rw && !s.sync {
		s.result = req.result
		if req.result == statusOK {
			s.result = r.d.execute(r.mem, req, &r.submitScratch)
		}
	}
	for !r.prepare(s, uint64(c.Head)) {
		if err := r.submit(); err != nil {
			return err
		}
	}
	// The kernel sees this entry only at the next Submit, after these: and
	// a request never prepared is never counted, or the completer would
	// wait for it forever.
	s.busy.Store(true)
	r.inFlight.Add(1)
	return nil
}

// submit hands the prepared requests to the kernel. If it fails, those the
// kernel did not take will never complete: they stop counting as in flight,
// so the completer can drain the rest and the device be reset.
func (r *ringQueue) submit() error {
	if err := r.ring.Submit(); err != nil {
		r.inFlight.Add(-int32(r.ring.Unsubmitted()))
		return fmt.Errorf("disk %q: %w", r.d.opts.Path, err)
	}
	return nil
}

func (r *ringQueue) prepare(s *slot, tag uint64) bool {
	switch {
	case s.rw:
		return r.ring.PrepareVectored(s.write, s.iovecs, s.off, tag)
	case s.sync:
		return r.ring.PrepareDatasync(tag)
	}
	return r.ring.PrepareNop(tag)
}

func totalBytes(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}

// completer returns each finished request to the driver until the submitter
// has stopped and nothing is in flight; then it leaves the ring idle for
// the next activation. It never leaves earlier: the kernel may still be
// writing into guest memory, and a late completion would find the next
// activation's request in its slot.
func (r *ringQueue) completer() {
	defer r.d.wg.Done()
	defer r.idle()
	for {
		pushed := false
		r.ring.Reap(func(c uring.Completion) {
			if r.finish(c) {
				pushed = true
			}
		})
		if pushed {
			r.q.Notify()
		}
		if r.closing.Load() && r.inFlight.Load() == 0 {
			return
		}
		if _, err := r.done.Read(); err != nil {
			// Only a closed eventfd fails, and Device.Close closes
			// it only after a reset: idle marks the ring lost.
			r.d.log.Warn("virtio-blk completion wait failed", "err", err)
			return
		}
	}
}

// finish completes one request and reports whether it went to the used ring.
func (r *ringQueue) finish(c uring.Completion) bool {
	if c.Tag == uring.Dropped {
		return false // a no-op left by a failed submission, counted then
	}
	if c.Tag >= uint64(len(r.slots)) || !r.slots[c.Tag].busy.Load() {
		r.d.log.Warn("io_uring completed a request govmm did not submit", "tag", c.Tag)
		return false
	}
	s := &r.slots[c.Tag]
	status := s.result
	switch {
	case s.rw:
		status = r.transferStatus(s, c.Res)
	case s.sync:
		status = r.syncStatus(c.Res)
	}
	addr, written := s.status, s.written
	clear(s.iovecs)
	clear(s.bufs) // hold no guest memory between requests
	r.inFlight.Add(-1)
	s.busy.Store(false)
	if err := r.mem.WriteAt([]byte{status}, addr); err != nil {
		r.q.Fail(fmt.Errorf("write virtio-blk status: %w", err))
		return false
	}
	return r.q.Push(uint16(c.Tag), written) == nil
}

// transferStatus turns a read or write's result into its status. A short
// transfer (the kernel may stop early, as preadv may), an interrupted one or
// one the kernel cancelled before it started (Linux 6.1 does when it fails
// to start an io-wq worker, now and then for a thread's first request) is
// finished with blocking calls on this goroutine.
func (r *ringQueue) transferStatus(s *slot, res int32) byte {
	var err error
	switch {
	case res >= 0 && int(res) == s.want:
		return statusOK
	case res > 0:
		err = r.d.vectoredAll(s.write, advance(s.bufs, int(res)), s.off+int64(res), &r.completeScratch)
	case redo(res):
		err = r.d.vectoredAll(s.write, s.bufs, s.off, &r.completeScratch)
	case res == 0:
		err = errors.New("the image shrank underneath the request")
	default:
		err = unix.Errno(-res)
	}
	if err != nil {
		r.d.log.Warn("virtio-blk request failed", "write", s.write, "err", err)
		return statusIOErr
	}
	return statusOK
}

// syncStatus turns a flush's result into its status. A flush the kernel
// cancelled or interrupted is done again with a blocking call here.
func (r *ringQueue) syncStatus(res int32) byte {
	var err error
	switch {
	case res == 0:
		return statusOK
	case redo(res):
		err = r.d.datasync()
	default:
		err = unix.Errno(-res)
	}
	if err != nil {
		r.d.log.Warn("virtio-blk flush failed", "err", err)
		return statusIOErr
	}
	return statusOK
}

// redo reports whether a result means the kernel never did the request:
// interrupted, out of resources, or cancelled because no io-wq worker could
// start. Such a request is done again with a blocking call.
func redo(res int32) bool {
	return res == -int32(unix.EINTR) || res == -int32(unix.EAGAIN) || res == -int32(unix.ECANCELED)
}

// idle readies the ring for the next activation: no slot busy (those whose
// submission failed never complete) and no guest memory held.
func (r *ringQueue) idle() {
	if r.inFlight.Load() != 0 {
		r.lost = true
		return
	}
	for i := range r.slots {
		s := &r.slots[i]
		clear(s.iovecs)
		clear(s.bufs)
		s.busy.Store(false)
	}
}
