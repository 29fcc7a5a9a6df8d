package net

import (
	"encoding/binary"
	"errors"
	"os"
	"time"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/net/tap"
	"github.com/govmm/govmm/internal/rawsys"
	"github.com/govmm/govmm/memory"
)

// transmitter serves the transmit queue: each chain goes to the tap in one
// writev straight from guest memory.
type transmitter struct {
	q        *virtio.Queue
	mem      *memory.RAM
	tap      backend
	log      *virtio.Warner
	features uint64   // negotiated: the offloads a frame's header may ask for
	iov      [][]byte // the frame being sent, reused
}

func newTransmitter(q *virtio.Queue, b backend, features uint64, log *virtio.Warner) *transmitter {
	return &transmitter{q: q, mem: q.Mem(), tap: b, features: features, log: log, iov: make([][]byte, 0, 64)}
}

// Lingering: a drain that found txLingerAfter frames or more shows a guest
// queueing frames faster than they are sent. The transmitter then keeps
// notifications off and looks at the ring every txPollStep, until txLinger
// passes with nothing new, before it asks for a kick again. A kick is a VM
// exit on the guest's vCPU, one of the dearest under nested KVM: in the
// sandbox, TCP out of the guest took 4 to 7 kicks per MiB this way against
// 10. A frame waits at most one step, and a lone frame, as in
// request/response traffic, never waits. The limit is in time rather than
// looks because a host short of CPU oversleeps each step (about 200 µs for
// 50 µs in the sandbox), and every look is a wake-up taken from the vCPU;
// the sleep is a raw nanosleep, as the device's other calls are raw, since
// a Go system call wakes sysmon, which then preempts the vCPU thread.
const (
	txLingerAfter = 2
	txPollStep    = 50 * time.Microsecond
	txLinger      = 300 * time.Microsecond
)

// run serves until the queue is stopped or broken. It drains the ring before
// its first wait, since the driver may have kicked before activation.
func (t *transmitter) run() {
	for {
		n, ok := t.drain(t.q.Poll)
		if !ok {
			return
		}
		if n >= txLingerAfter && !t.linger() {
			return
		}
		// Ask for a kick: Pop publishes avail_event, then looks once more.
		n, ok = t.drain(t.q.Pop)
		if !ok {
			return
		}
		t.q.Notify()
		if n > 0 {
			continue
		}
		if err := t.q.Wait(); err != nil {
			return
		}
	}
}

// linger returns the frames sent so far to the driver, then sends what the
// driver adds while it keeps looking at the ring without notifications. It
// returns false if the worker must stop.
func (t *transmitter) linger() bool {
	t.q.Notify()
	for last := time.Now(); time.Since(last) < txLinger; {
		rawsys.Nanosleep(txPollStep)
		if t.q.Stopped() {
			return false
		}
		n, ok := t.drain(t.q.Poll)
		if !ok {
			return false
		}
		if n > 0 {
			last = time.Now()
			t.q.Notify()
		}
	}
	return true
}

// drain sends every chain pop returns and gives each back to the driver. It
// returns how many it sent, and false if the worker must stop.
func (t *transmitter) drain(pop func() (virtio.Chain, bool, error)) (int, bool) {
	n := 0
	for {
		c, ok, err := pop()
		if err != nil {
			return n, false
		}
		if !ok {
			return n, true
		}
		if !t.send(c) {
			return n, false
		}
		if err := t.q.Push(c.Head, 0); err != nil {
			return n, false
		}
		n++
	}
}

// send parses one chain and writes its frame to the tap. A frame no tap would
// take, or the tap refuses, is dropped as a wire would drop it. It returns
// false if the worker must stop: the chain broke the queue, or Reset began.
func (t *transmitter) send(c virtio.Chain) bool {
	var err error
	t.iov, err = parseTx(t.mem, c, t.features, t.iov[:0])
	defer clear(t.iov) // hold no guest memory between requests
	switch {
	case errors.Is(err, errDrop):
		t.q.Dropped()
		t.log.Warn("dropping a transmit frame", "err", err)
		return true
	case err != nil:
		t.q.Fail(err)
		return false
	}
	if _, err := t.tap.Writev(t.iov); err != nil {
		if stopping(err) {
			return false
		}
		t.log.Warn("the tap refused a transmit frame; dropped", "err", err)
	}
	return true
}

// stopping reports whether a tap error is Reset's deadline or Close.
func stopping(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed)
}

// receiver serves the receive queue: it reads one packet at a time from the
// tap and waits, holding it, until the driver has buffers for it.
type receiver struct {
	q         *virtio.Queue
	mem       *memory.RAM
	tap       backend
	log       *virtio.Warner
	mergeable bool // VIRTIO_NET_F_MRG_RXBUF
	guestCsum bool // VIRTIO_NET_F_GUEST_CSUM

	buf    []byte          // one packet, header first; one byte spare to detect truncation
	chains []virtio.Chain  // popped from the ring and not yet used
	bufs   []virtio.Buffer // their buffer lists, kept past the next Pop
	room   uint64          // device-writable bytes in chains
}

func newReceiver(q *virtio.Queue, b backend, features uint64, log *virtio.Warner) *receiver {
	return &receiver{
		q: q, mem: q.Mem(), tap: b, log: log,
		mergeable: features&featureMrgRxbuf != 0,
		guestCsum: features&featureGuestCsum != 0,
		buf:       make([]byte, maxPacket+1),
	}
}

// rxBatch bounds the packets delivered between two interrupts: enough to
// spare the guest an interrupt per packet under load, few enough that the
// first packets of a burst are not held back long.
const rxBatch = 64

// run delivers packets until the device stops. It waits on the tap only
// with nothing delivered and not yet signalled: packets already queued on
// the tap are delivered first and the guest interrupted once for them all.
func (r *receiver) run() {
	batched := 0
	for {
		read := r.tap.ReadNow
		if batched == 0 || batched == rxBatch {
			r.q.Notify()
			batched = 0
			read = r.tap.Read
		}
		n, err := read(r.buf)
		if errors.Is(err, tap.ErrNoFrame) {
			batched = rxBatch // interrupt now, then wait
			continue
		}
		if err != nil {
			r.q.Notify()
			if !stopping(err) {
				r.log.Warn("cannot read the tap; receiving stops until the device is reset", "err", err)
			}
			return
		}
		if n < hdrLen+minFrame || n > maxPacket {
			// Too short never comes from a tap; too long was cut short.
			r.log.Warn("dropping a received packet of unusable length", "bytes", n)
			continue
		}
		if err := r.deliver(r.buf[:n]); err != nil {
			return
		}
		batched++
	}
}

// deliver places one packet in the receive queue, waiting for the driver to
// add buffers if it has too few. An error means the queue stopped or broke.
func (r *receiver) deliver(pkt []byte) error {
	for {
		ready, err := r.gather(len(pkt))
		if err != nil {
			return err
		}
		if ready {
			break
		}
		// The guest refills the ring when told of what it holds.
		r.q.Notify()
		if err := r.q.Wait(); err != nil {
			return err
		}
	}
	if r.room < uint64(len(pkt)) {
		// Without mergeable buffers a packet needs one chain that holds it
		// (§5.1.6.3.1). Drop it and keep the chain for the next one.
		r.log.Warn("dropping a received packet larger than the receive buffer", "packet", len(pkt), "buffer", r.room)
		return nil
	}
	return r.place(pkt)
}

// gather pops receive chains until those held can take n bytes, or hold one
// chain without mergeable buffers. It returns false if the ring ran dry first.
func (r *receiver) gather(n int) (bool, error) {
	for r.mergeable && r.room < uint64(n) || !r.mergeable && len(r.chains) == 0 {
		c, ok, err := r.q.Pop()
		if err != nil || !ok {
			return false, err
		}
		if err := checkRx(c); err != nil {
			r.q.Fail(err)
			return false, err
		}
		c, r.bufs = c.AppendTo(r.bufs)
		r.chains = append(r.chains, c)
		r.room += c.WritableLen()
	}
	return true, nil
}

// place fills the held chains with pkt, in order, and returns them to the
// driver (§5.1.6.4): num_buffers is the number of chains, and flags are
// cleared unless the driver accepts checksum offload. Every chain held is
// needed: gather stopped popping as soon as they had room.
func (r *receiver) place(pkt []byte) error {
	binary.LittleEndian.PutUint16(pkt[hdrNumBuffers:], uint16(len(r.chains)))
	if !r.guestCsum {
		pkt[hdrFlags] = 0
	}
	for _, c := range r.chains {
		n, err := copyToChain(r.mem, c, pkt)
		if err != nil {
			r.q.Fail(err)
			return err
		}
		pkt = pkt[n:]
		if err := r.q.Push(c.Head, uint32(n)); err != nil {
			return err
		}
	}
	r.chains, r.bufs, r.room = r.chains[:0], r.bufs[:0], 0
	return nil
}
