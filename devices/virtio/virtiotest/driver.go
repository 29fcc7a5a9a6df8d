// Package virtiotest is a mock virtio driver for device tests: it lays out a
// split virtqueue (virtio 1.2 §2.7) in a memory.RAM the way a guest driver
// would, places buffers, kicks, and reads back what the device used. Device
// packages (blk, net, console, rng) import it from their _test files.
package virtiotest

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/memory"
)

// Descriptor flags (virtio 1.2 §2.7.5).
const (
	DescFNext     = 1
	DescFWrite    = 2
	DescFIndirect = 4
)

// ringArea is the room NewDriver reserves for one queue's rings; data
// buffers follow it.
const ringArea = 64 * memory.KiB

// Driver plays the guest side of one split virtqueue.
type Driver struct {
	t        testing.TB
	mem      *memory.RAM
	cfg      virtio.QueueConfig
	kick     *eventfd.EventFD
	data     memory.GuestAddress // next free byte for buffers
	dataEnd  memory.GuestAddress
	nextDesc uint16
	availIdx uint16
	kickIdx  uint16 // availIdx when KickIfAsked last decided
	usedSeen uint16
	n        *Notifier
	// WaitUsed's timers, reused so that waiting allocates nothing and a
	// test can count a device's allocations around it.
	deadline, tick *time.Timer
}

// NewDriver lays out a queue of size entries at base (its rings) and uses
// [base+64 KiB, base+64 KiB+dataSize) for buffers. size ≤ 2048 fits.
func NewDriver(t testing.TB, mem *memory.RAM, base memory.GuestAddress, size uint16, dataSize uint64) *Driver {
	t.Helper()
	desc := base
	avail := desc + memory.GuestAddress(16*uint64(size))
	used := (avail + memory.GuestAddress(6+2*uint64(size)) + 3) &^ 3
	if end := used + memory.GuestAddress(6+8*uint64(size)); end > base+ringArea {
		t.Fatalf("virtiotest: queue size %d does not fit in %d bytes", size, ringArea)
	}
	kick, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kick.Close() })
	d := &Driver{
		t: t, mem: mem, kick: kick,
		cfg:  virtio.QueueConfig{Size: size, Desc: desc, Driver: avail, Device: used},
		data: base + ringArea, dataEnd: base + ringArea + memory.GuestAddress(dataSize),
		n:        &Notifier{ch: make(chan struct{}, 1)},
		deadline: time.NewTimer(time.Hour),
		tick:     time.NewTimer(time.Hour),
	}
	d.deadline.Stop()
	d.tick.Stop()
	zero := make([]byte, ringArea)
	d.write(base, zero)
	return d
}

// Config is the queue configuration a transport would hand NewQueue.
func (d *Driver) Config() virtio.QueueConfig { return d.cfg }

// Notifier records what the queue reported.
func (d *Driver) Notifier() *Notifier { return d.n }

// Queue creates the device side of this queue with the negotiated features.
func (d *Driver) Queue(features uint64) *virtio.Queue {
	d.t.Helper()
	q, err := virtio.NewQueue(d.mem, d.cfg, features, d.kick, d.n)
	if err != nil {
		d.t.Fatalf("virtiotest: NewQueue: %v", err)
	}
	return q
}

// Kick notifies the device, as a write to the notify register would.
func (d *Driver) Kick() {
	if err := d.kick.Write(1); err != nil {
		d.t.Fatalf("virtiotest: kick: %v", err)
	}
}

// Chain is what the driver put on the ring.
type Chain struct {
	Head     uint16
	Readable []virtio.Buffer
	Writable []virtio.Buffer
}

// Alloc reserves n bytes of guest memory for buffers, filled with p if given.
func (d *Driver) Alloc(n uint32, p []byte) virtio.Buffer {
	d.t.Helper()
	a := (d.data + 15) &^ 15
	if a+memory.GuestAddress(n) > d.dataEnd {
		d.t.Fatalf("virtiotest: data area full (%d bytes wanted)", n)
	}
	d.data = a + memory.GuestAddress(n)
	d.write(a, p)
	return virtio.Buffer{Addr: a, Len: n}
}

// AddChain places one buffer per readable slice (with its bytes) and one
// zero-filled buffer per writable length, chains them and makes the chain
// available. It does not kick.
func (d *Driver) AddChain(readable [][]byte, writable []uint32) Chain {
	d.t.Helper()
	c, descs := d.buffers(readable, writable)
	c.Head = d.AddDescs(descs, true)
	return c
}

// AddIndirectChain is AddChain through an indirect table (§2.7.5.3): the
// ring's one descriptor points at a table holding the chain. It needs
// VIRTIO_F_INDIRECT_DESC.
func (d *Driver) AddIndirectChain(readable [][]byte, writable []uint32) Chain {
	d.t.Helper()
	c, descs := d.buffers(readable, writable)
	table := make([]byte, 0, 16*len(descs))
	for i, ds := range descs {
		if i+1 < len(descs) {
			ds.Flags |= DescFNext
			ds.Next = uint16(i + 1)
		}
		table = appendDesc(table, ds)
	}
	t := d.Alloc(uint32(len(table)), table)
	c.Head = d.AddDescs([]Desc{{Addr: t.Addr, Len: t.Len, Flags: DescFIndirect}}, false)
	return c
}

// buffers places a chain's buffers and describes them, unlinked.
func (d *Driver) buffers(readable [][]byte, writable []uint32) (Chain, []Desc) {
	d.t.Helper()
	var c Chain
	var descs []Desc
	for _, p := range readable {
		b := d.Alloc(uint32(len(p)), p)
		c.Readable = append(c.Readable, b)
		descs = append(descs, Desc{Addr: b.Addr, Len: b.Len})
	}
	for _, n := range writable {
		b := d.Alloc(n, make([]byte, n))
		c.Writable = append(c.Writable, b)
		descs = append(descs, Desc{Addr: b.Addr, Len: b.Len, Flags: DescFWrite})
	}
	return c, descs
}

// Desc is one raw descriptor. AddDescs fills Next for a linked chain unless
// told not to, so tests can also build loops and wild indices.
type Desc struct {
	Addr  memory.GuestAddress
	Len   uint32
	Flags uint16
	Next  uint16
}

// AddDescs writes descs into consecutive free descriptor slots and makes the
// first one available. With link, each descriptor but the last gets
// DescFNext and Next pointing at its successor.
func (d *Driver) AddDescs(descs []Desc, link bool) uint16 {
	d.t.Helper()
	if len(descs) == 0 || len(descs) > int(d.cfg.Size) {
		d.t.Fatalf("virtiotest: %d descriptors for a queue of %d", len(descs), d.cfg.Size)
	}
	idx := make([]uint16, len(descs))
	for i := range descs {
		idx[i] = d.nextDesc
		d.nextDesc = (d.nextDesc + 1) % d.cfg.Size
	}
	for i, ds := range descs {
		if link && i+1 < len(descs) {
			ds.Flags |= DescFNext
			ds.Next = idx[i+1]
		}
		d.WriteDesc(idx[i], ds)
	}
	d.Publish(idx[0])
	return idx[0]
}

// WriteDesc stores descriptor i of the table.
func (d *Driver) WriteDesc(i uint16, ds Desc) {
	d.write(d.cfg.Desc+memory.GuestAddress(16*uint64(i)), appendDesc(nil, ds))
}

// appendDesc appends ds as struct virtq_desc (§2.7.5).
func appendDesc(b []byte, ds Desc) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(ds.Addr))
	b = binary.LittleEndian.AppendUint32(b, ds.Len)
	b = binary.LittleEndian.AppendUint16(b, ds.Flags)
	return binary.LittleEndian.AppendUint16(b, ds.Next)
}

// KickIfAsked kicks the way a driver with EVENT_IDX does (§2.7.10; Linux's
// virtqueue_kick_prepare): only if the chains published since its last
// decision moved avail.idx past the device's avail_event. It reports whether
// it kicked.
func (d *Driver) KickIfAsked() bool {
	d.t.Helper()
	old := d.kickIdx
	d.kickIdx = d.availIdx
	// Publish's store of avail.idx is a full barrier: this load sees an
	// avail_event the device stored before it looked at avail.idx.
	event, err := d.mem.LoadUint16Atomic(d.cfg.Device + 4 + memory.GuestAddress(8*uint64(d.cfg.Size)))
	if err != nil {
		d.t.Fatalf("virtiotest: %v", err)
	}
	if d.availIdx-event-1 < d.availIdx-old {
		d.Kick()
		return true
	}
	return false
}

// Publish puts head in the next available ring slot, then bumps avail.idx
// (§2.7.13).
func (d *Driver) Publish(head uint16) {
	slot := d.cfg.Driver + 4 + memory.GuestAddress(2*uint64(d.availIdx%d.cfg.Size))
	d.put16(slot, head)
	d.availIdx++
	if err := d.mem.StoreUint16Atomic(d.cfg.Driver+2, d.availIdx); err != nil {
		d.t.Fatalf("virtiotest: %v", err)
	}
}

// WantInterrupt asks, under EVENT_IDX, to be interrupted when the device
// uses the next buffer after those seen: it sets used_event to the used
// index the driver has reached (§2.7.10; Linux's virtqueue_enable_cb).
func (d *Driver) WantInterrupt() {
	d.t.Helper()
	a := d.cfg.Driver + 4 + memory.GuestAddress(2*uint64(d.cfg.Size))
	if err := d.mem.StoreUint16Atomic(a, d.usedSeen); err != nil {
		d.t.Fatalf("virtiotest: %v", err)
	}
}

// Used is one used ring element (§2.7.8).
type Used struct {
	ID  uint32
	Len uint32
}

// PollUsed returns the next used element the driver has not seen, if any.
func (d *Driver) PollUsed() (Used, bool) {
	if d.get16(d.cfg.Device+2) == d.usedSeen {
		return Used{}, false
	}
	var b [8]byte
	d.read(d.cfg.Device+4+memory.GuestAddress(8*uint64(d.usedSeen%d.cfg.Size)), b[:])
	d.usedSeen++
	return Used{ID: binary.LittleEndian.Uint32(b[:]), Len: binary.LittleEndian.Uint32(b[4:])}, true
}

// WaitUsed waits up to five seconds for the next used element. It
// allocates nothing: an interrupt wakes it at once, and without one it looks
// again every 10 ms.
func (d *Driver) WaitUsed() Used {
	d.t.Helper()
	d.deadline.Reset(5 * time.Second)
	defer d.deadline.Stop()
	for {
		if u, ok := d.PollUsed(); ok {
			return u
		}
		d.tick.Reset(10 * time.Millisecond)
		select {
		case <-d.n.ch:
		case <-d.tick.C:
		case <-d.deadline.C:
			d.t.Fatalf("virtiotest: no used buffer after 5s (queue error: %v)", d.n.Err())
		}
	}
}

// WaitUsedOrBroken is WaitUsed for a queue a request may break: it reports
// false as soon as the queue has reported Broken and nothing is left to
// read (a reset still lets the requests in flight finish).
func (d *Driver) WaitUsedOrBroken() (Used, bool) {
	d.t.Helper()
	d.deadline.Reset(5 * time.Second)
	defer d.deadline.Stop()
	for {
		if u, ok := d.PollUsed(); ok {
			return u, true
		}
		if d.n.Err() != nil {
			return Used{}, false
		}
		d.tick.Reset(10 * time.Millisecond)
		select {
		case <-d.n.ch:
		case <-d.tick.C:
		case <-d.deadline.C:
			d.t.Fatalf("virtiotest: no used buffer after 5s and the queue not broken")
		}
	}
}

// ExpectNoUsed checks that the device used nothing within wait.
func (d *Driver) ExpectNoUsed(wait time.Duration) {
	d.t.Helper()
	time.Sleep(wait)
	if u, ok := d.PollUsed(); ok {
		d.t.Fatalf("virtiotest: unexpected used element %+v", u)
	}
}

// Bytes returns a copy of the guest memory behind b.
func (d *Driver) Bytes(b virtio.Buffer) []byte {
	p := make([]byte, b.Len)
	d.read(b.Addr, p)
	return p
}

func (d *Driver) write(a memory.GuestAddress, p []byte) {
	d.t.Helper()
	if err := d.mem.WriteAt(p, a); err != nil {
		d.t.Fatalf("virtiotest: %v", err)
	}
}

func (d *Driver) read(a memory.GuestAddress, p []byte) {
	d.t.Helper()
	if err := d.mem.ReadAt(p, a); err != nil {
		d.t.Fatalf("virtiotest: %v", err)
	}
}

func (d *Driver) put16(a memory.GuestAddress, v uint16) {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	d.write(a, b[:])
}

func (d *Driver) get16(a memory.GuestAddress) uint16 {
	var b [2]byte
	d.read(a, b[:])
	return binary.LittleEndian.Uint16(b[:])
}

// Notifier is a virtio.Notifier that records interrupts and the first
// Broken error.
type Notifier struct {
	mu         sync.Mutex
	interrupts int
	broken     error
	ch         chan struct{}
}

// Interrupt implements virtio.Notifier.
func (n *Notifier) Interrupt() {
	n.mu.Lock()
	n.interrupts++
	n.mu.Unlock()
	n.wake()
}

// Broken implements virtio.Notifier.
func (n *Notifier) Broken(err error) {
	n.mu.Lock()
	if n.broken == nil {
		n.broken = err
	}
	n.mu.Unlock()
	n.wake()
}

func (n *Notifier) wake() {
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

// Interrupts counts Interrupt calls.
func (n *Notifier) Interrupts() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.interrupts
}

// Err is the first error passed to Broken, nil if none.
func (n *Notifier) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.broken
}

// WaitBroken waits up to five seconds for Broken and returns its error.
func (n *Notifier) WaitBroken(t testing.TB) error {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if err := n.Err(); err != nil {
			return err
		}
		select {
		case <-n.ch:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("virtiotest: queue not marked broken after 5s")
		}
	}
}

// NewRAM returns size bytes of guest RAM that is unmapped when the test
// ends; a failing unmap fails the test.
func NewRAM(t testing.TB, size uint64) *memory.RAM {
	t.Helper()
	mem, err := memory.New(size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mem.Close(); err != nil {
			t.Error(err)
		}
	})
	return mem
}
