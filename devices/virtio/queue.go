package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/memory"
)

// MaxQueueSize is the largest split virtqueue (virtio 1.2 §2.7).
const MaxQueueSize = 32768

// Split virtqueue layout (virtio 1.2 §2.7): offsets into the driver area
// (struct virtq_avail) and the device area (struct virtq_used).
const (
	availFlags = 0
	availIdx   = 2
	availRing  = 4 // ring[size] u16, then used_event u16

	usedIdx      = 2
	usedRing     = 4 // ring[size] {id u32, len u32}, then avail_event u16
	usedElemSize = 8

	availFNoInterrupt = 1 // VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7)
)

var (
	// ErrStopped is returned by Wait once Stop was called.
	ErrStopped = errors.New("virtqueue stopped")
	// ErrBroken is wrapped by every error of a queue the driver broke the
	// rules of; the device needs a reset.
	ErrBroken = errors.New("virtqueue broken")
)

// QueueConfig is what the driver programmed through the transport (virtio 1.2
// §4.1.4.3).
type QueueConfig struct {
	Size   uint16
	Desc   memory.GuestAddress // descriptor table
	Driver memory.GuestAddress // driver area: the available ring
	Device memory.GuestAddress // device area: the used ring
}

// Notifier is how a queue tells the transport things; the transport
// implements it. Both methods are called from the goroutine that serves the
// queue and must not wait for it.
type Notifier interface {
	// Interrupt says used buffers were added and the driver wants to hear
	// (already filtered by EVENT_IDX or NO_INTERRUPT).
	Interrupt()
	// Broken says the driver broke the rules: mark DEVICE_NEEDS_RESET, raise
	// a configuration interrupt, log one line. It is called once per queue.
	Broken(err error)
}

// QueueCounters count what a queue served, for statistics: the transport
// keeps them across resets, and any goroutine may read them.
type QueueCounters struct {
	Kicks      atomic.Uint64 // driver notifications (each one a VM exit, served in KVM)
	Chains     atomic.Uint64 // chains taken from the available ring
	Interrupts atomic.Uint64 // interrupts sent to the driver
	Dropped    atomic.Uint64 // chains the device refused and gave back unused
}

// Queue is one split virtqueue (virtio 1.2 §2.7). One goroutine may call Pop,
// Push, Notify, Wait and Fail while another calls Stop. A device that
// completes requests out of line may instead Pop and Wait on one goroutine
// and Push and Notify on another: the two halves share no state, and Fail
// and Stop may be called from either.
type Queue struct {
	mem      *memory.RAM
	cfg      QueueConfig
	eventIdx bool // VIRTIO_F_EVENT_IDX
	indirect bool // VIRTIO_F_INDIRECT_DESC
	kick     *eventfd.EventFD
	n        Notifier
	count    *QueueCounters

	// Owned by the goroutine that calls Pop.
	lastAvail uint16   // free-running index of the next avail ring entry to take
	scratch   []Buffer // room readChain reuses from chain to chain
	// Owned by the goroutine that calls Push and Notify.
	used      uint16 // free-running used.idx, as last published
	signalled uint16 // used when the driver was last interrupted

	stopped atomic.Bool
	mu      sync.Mutex
	broken  error // guarded by mu; set once
}

// NewQueue checks the rings the driver programmed and returns the queue.
// features are the negotiated feature bits; the queue honours
// FeatureRingEventIdx and FeatureRingIndirectDesc. kick is the eventfd the
// transport signals on a driver notification; the queue never closes it.
func NewQueue(mem *memory.RAM, cfg QueueConfig, features uint64, kick *eventfd.EventFD, n Notifier) (*Queue, error) {
	if mem == nil || kick == nil || n == nil {
		return nil, errors.New("virtqueue: NewQueue needs guest memory, a kick eventfd and a notifier")
	}
	if err := checkConfig(mem, cfg); err != nil {
		return nil, err
	}
	return &Queue{
		mem:      mem,
		cfg:      cfg,
		eventIdx: features&FeatureRingEventIdx != 0,
		indirect: features&FeatureRingIndirectDesc != 0,
		kick:     kick,
		n:        n,
		count:    new(QueueCounters),
	}, nil
}

// CountInto makes the queue count into c from now on; call it before the
// queue is served.
func (q *Queue) CountInto(c *QueueCounters) { q.count = c }

// checkConfig validates the queue size and that each ring is aligned and
// inside guest RAM (virtio 1.2 §2.7 table "Virtqueue Part Alignment Size").
func checkConfig(mem *memory.RAM, cfg QueueConfig) error {
	s := uint64(cfg.Size)
	if s == 0 || s > MaxQueueSize || s&(s-1) != 0 {
		return fmt.Errorf("virtqueue size %d is not a power of two from 1 to %d", s, MaxQueueSize)
	}
	for _, r := range []struct {
		name  string
		addr  memory.GuestAddress
		align uint64
		len   uint64
	}{
		{"descriptor table", cfg.Desc, 16, descSize * s},
		{"driver area (available ring)", cfg.Driver, 2, 6 + 2*s},
		{"device area (used ring)", cfg.Device, 4, 6 + usedElemSize*s},
	} {
		if uint64(r.addr)%r.align != 0 {
			return fmt.Errorf("virtqueue %s at %v is not %d-byte aligned", r.name, r.addr, r.align)
		}
		if _, err := mem.Slice(r.addr, r.len); err != nil {
			return fmt.Errorf("virtqueue %s of size %d: %w", r.name, s, err)
		}
	}
	return nil
}

// Serve hands every chain the driver offers to handle, returns it to the
// driver with the length handle wrote, and waits for kicks, until the queue
// is stopped or broken. A handle error is the guest's: the queue fails. It
// drains before its first wait, as the driver may have kicked before the
// device was activated.
func (q *Queue) Serve(handle func(mem *memory.RAM, c Chain) (uint32, error)) {
	for {
		pushed := 0
		for {
			c, ok, err := q.Pop()
			if err != nil {
				return
			}
			if !ok {
				break
			}
			n, err := handle(q.mem, c)
			if err != nil {
				q.Fail(err)
				return
			}
			if err := q.Push(c.Head, n); err != nil {
				return
			}
			pushed++
		}
		if pushed > 0 {
			q.Notify()
		}
		if err := q.Wait(); err != nil {
			return
		}
	}
}

// Mem is the guest memory the queue's buffers live in.
func (q *Queue) Mem() *memory.RAM { return q.mem }

// Pop takes the next chain the driver made available. It returns false if
// there is none; with EVENT_IDX it then asks the driver to kick for the next
// one (avail_event, §2.7.10). An error means the queue is broken: Broken was
// called and every later call returns the same error.
func (q *Queue) Pop() (Chain, bool, error) { return q.pop(true) }

// Poll is Pop for a caller that will look again soon without waiting for a
// kick: when there is no chain it leaves avail_event where it was, so the
// driver goes on adding chains without kicking.
func (q *Queue) Poll() (Chain, bool, error) { return q.pop(false) }

func (q *Queue) pop(askKick bool) (Chain, bool, error) {
	if err := q.err(); err != nil {
		return Chain{}, false, err
	}
	n, err := q.pending(askKick)
	if err != nil || n == 0 {
		return Chain{}, false, q.failIf(err)
	}
	slot := memory.GuestAddress(q.lastAvail & (q.cfg.Size - 1))
	head, err := q.mem.ReadUint16(q.cfg.Driver + availRing + 2*slot)
	if err != nil {
		return Chain{}, false, q.fail(fmt.Errorf("avail ring entry %d: %w", q.lastAvail, err))
	}
	c, scratch, err := readChain(q.scratch, q.mem, q.cfg.Desc, q.cfg.Size, head, q.indirect)
	q.scratch = scratch
	if err != nil {
		return Chain{}, false, q.fail(fmt.Errorf("avail ring entry %d: %w", q.lastAvail, err))
	}
	q.lastAvail++
	q.count.Chains.Add(1)
	return c, true, nil
}

// Dropped counts a chain the device gives back unused because what the
// driver put in it is refused (a malformed frame): the driver's mistake,
// which breaks nothing but must show in the statistics.
func (q *Queue) Dropped() { q.count.Dropped.Add(1) }

// pending is how many chains are available. With EVENT_IDX and askKick,
// when there are none it publishes avail_event and looks again: the store is
// a full barrier, so a chain the driver adds afterwards is either seen here
// or kicked.
func (q *Queue) pending(askKick bool) (uint16, error) {
	n, err := q.availPending()
	if err != nil || n > 0 || !askKick || !q.eventIdx {
		return n, err
	}
	if err := q.mem.StoreUint16Atomic(q.availEventAddr(), q.lastAvail); err != nil {
		return 0, fmt.Errorf("write avail_event: %w", err)
	}
	return q.availPending()
}

func (q *Queue) availPending() (uint16, error) {
	idx, err := q.mem.LoadUint16Atomic(q.cfg.Driver + availIdx)
	if err != nil {
		return 0, fmt.Errorf("read avail.idx: %w", err)
	}
	if n := idx - q.lastAvail; n <= q.cfg.Size {
		return n, nil
	}
	return 0, fmt.Errorf("avail.idx %d is more than the queue size %d ahead of the next entry to take, %d",
		idx, q.cfg.Size, q.lastAvail)
}

// Push returns the chain at head to the driver with written bytes of its
// device-writable buffers filled: the used ring entry is stored before
// used.idx (virtio 1.2 §2.7.8.2).
func (q *Queue) Push(head uint16, written uint32) error {
	if err := q.err(); err != nil {
		return err
	}
	if head >= q.cfg.Size {
		return fmt.Errorf("virtqueue at %v: push head %d: not below the queue size %d", q.cfg.Desc, head, q.cfg.Size)
	}
	var e [usedElemSize]byte
	binary.LittleEndian.PutUint32(e[0:], uint32(head))
	binary.LittleEndian.PutUint32(e[4:], written)
	slot := memory.GuestAddress(q.used & (q.cfg.Size - 1))
	if err := q.mem.WriteAt(e[:], q.cfg.Device+usedRing+usedElemSize*slot); err != nil {
		return q.fail(fmt.Errorf("used ring entry %d: %w", q.used, err))
	}
	if err := q.mem.StoreUint16Atomic(q.cfg.Device+usedIdx, q.used+1); err != nil {
		return q.fail(fmt.Errorf("write used.idx: %w", err))
	}
	q.used++
	return nil
}

// Notify interrupts the driver if chains were pushed since the last
// interrupt and the driver did not suppress it: with EVENT_IDX by used_event
// (§2.7.10), otherwise by VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7).
func (q *Queue) Notify() {
	if q.err() != nil || q.used == q.signalled {
		return
	}
	old := q.signalled
	q.signalled = q.used
	need, err := q.needInterrupt(old)
	if err != nil {
		q.failIf(err)
		return
	}
	if need {
		q.count.Interrupts.Add(1)
		q.n.Interrupt()
	}
}

// needInterrupt reads what the driver asked for. Push's used.idx store is a
// full barrier, so these loads see the driver's latest request.
func (q *Queue) needInterrupt(old uint16) (bool, error) {
	if q.eventIdx {
		event, err := q.mem.LoadUint16Atomic(q.cfg.Driver + availRing + 2*memory.GuestAddress(q.cfg.Size))
		if err != nil {
			return false, fmt.Errorf("read used_event: %w", err)
		}
		return vringNeedEvent(event, q.used, old), nil
	}
	flags, err := q.mem.LoadUint16Atomic(q.cfg.Driver + availFlags)
	if err != nil {
		return false, fmt.Errorf("read avail.flags: %w", err)
	}
	return flags&availFNoInterrupt == 0, nil
}

// vringNeedEvent reports whether moving an index from old to new passed
// event (virtio 1.2 §2.7.10, vring_need_event).
func vringNeedEvent(event, new, old uint16) bool { return new-event-1 < new-old }

func (q *Queue) availEventAddr() memory.GuestAddress {
	return q.cfg.Device + usedRing + usedElemSize*memory.GuestAddress(q.cfg.Size)
}

// Wait blocks until the driver kicks the queue. It returns ErrStopped once
// Stop was called, and an error if the transport closed the kick eventfd.
func (q *Queue) Wait() error {
	if q.stopped.Load() {
		return ErrStopped
	}
	n, err := q.kick.Read()
	if q.stopped.Load() {
		return ErrStopped
	}
	if err != nil {
		return fmt.Errorf("virtqueue at %v: wait for a kick: %w", q.cfg.Desc, err)
	}
	// The eventfd's counter adds up every notification since the last read.
	q.count.Kicks.Add(n)
	return nil
}

// Stopped reports whether Stop was called: a worker that polls the ring
// instead of waiting checks it between polls.
func (q *Queue) Stopped() bool { return q.stopped.Load() }

// Stop makes Wait return ErrStopped, now and from then on. It may be called
// from any goroutine, more than once.
func (q *Queue) Stop() {
	q.stopped.Store(true)
	// A failed write needs no handling: it means the transport closed the
	// eventfd, which wakes a blocked Read by itself, or that the counter is
	// already at its maximum, which wakes it too.
	if err := q.kick.Write(1); err != nil {
		return
	}
}

// Fail marks the queue broken because a device found a chain unusable: it
// calls Notifier.Broken (unless the queue was already broken), and every later
// Pop or Push returns an error wrapping ErrBroken and err.
func (q *Queue) Fail(err error) {
	if err == nil {
		err = errors.New("the device found a chain unusable")
	}
	q.fail(err)
}

func (q *Queue) err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.broken
}

func (q *Queue) failIf(err error) error {
	if err == nil {
		return nil
	}
	return q.fail(err)
}

// fail breaks the queue with err and tells the transport once; it returns the
// queue's error.
func (q *Queue) fail(err error) error {
	q.mu.Lock()
	first := q.broken == nil
	if first {
		q.broken = fmt.Errorf("%w: queue with descriptor table at %v: %w", ErrBroken, q.cfg.Desc, err)
	}
	broken := q.broken
	q.mu.Unlock()
	if first {
		q.n.Broken(broken)
	}
	return broken
}
