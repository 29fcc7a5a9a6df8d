package virtio

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/memory"
)

// rawDesc is a descriptor as a driver writes it, valid or not.
type rawDesc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func (d rawDesc) bytes() []byte {
	b := binary.LittleEndian.AppendUint64(nil, d.addr)
	b = binary.LittleEndian.AppendUint32(b, d.len)
	b = binary.LittleEndian.AppendUint16(b, d.flags)
	return binary.LittleEndian.AppendUint16(b, d.next)
}

// seg is one buffer the mock driver offers: data for the device to read, or
// room for it to write.
type seg struct {
	data []byte
	room uint32
}

func readable(s string) seg { return seg{data: []byte(s)} }
func writable(n uint32) seg { return seg{room: n} }
func (s seg) write() bool   { return s.data == nil }

// driver plays the guest side of one split virtqueue: it lays out the rings
// in guest memory, places buffers and publishes chains the way Linux's
// virtio_ring does, and reads back the used ring.
type driver struct {
	t        testing.TB
	mem      *memory.RAM
	cfg      QueueConfig
	nextDesc uint16
	availIdx uint16
	usedSeen uint16
	data     memory.GuestAddress // bump allocator for buffers and indirect tables
}

func newDriver(t testing.TB, mem *memory.RAM, size uint16) *driver {
	s := memory.GuestAddress(size)
	desc := memory.GuestAddress(0x1000)
	avail := desc + descSize*s
	used := (avail + 6 + 2*s + 3) &^ 3
	data := (used + 6 + usedElemSize*s + 0xfff) &^ 0xfff
	return &driver{t: t, mem: mem, cfg: QueueConfig{Size: size, Desc: desc, Driver: avail, Device: used}, data: data}
}

func (d *driver) alloc(n uint64) memory.GuestAddress {
	a := d.data
	d.data = (d.data + memory.GuestAddress(n) + 15) &^ 15
	return a
}

func (d *driver) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

// buffers places segs in guest memory and describes them, unchained.
func (d *driver) buffers(segs []seg) []rawDesc {
	descs := make([]rawDesc, len(segs))
	for i, s := range segs {
		if s.write() {
			descs[i] = rawDesc{addr: uint64(d.alloc(uint64(s.room))), len: s.room, flags: descFWrite}
			continue
		}
		a := d.alloc(uint64(len(s.data)))
		d.must(d.mem.WriteAt(s.data, a))
		descs[i] = rawDesc{addr: uint64(a), len: uint32(len(s.data))}
	}
	return descs
}

// putDesc writes descriptor i of the queue's table.
func (d *driver) putDesc(i uint16, r rawDesc) {
	d.must(d.mem.WriteAt(r.bytes(), d.cfg.Desc+descSize*memory.GuestAddress(i)))
}

// add makes segs available as one direct chain and returns its head.
func (d *driver) add(segs ...seg) uint16 {
	descs := d.buffers(segs)
	head := d.nextDesc
	for i, r := range descs {
		idx := d.nextDesc
		d.nextDesc = (d.nextDesc + 1) % d.cfg.Size
		if i < len(descs)-1 {
			r.flags |= descFNext
			r.next = d.nextDesc
		}
		d.putDesc(idx, r)
	}
	d.publish(head)
	return head
}

// addIndirect makes segs available through one indirect table.
func (d *driver) addIndirect(segs ...seg) uint16 {
	descs := d.buffers(segs)
	table := d.alloc(uint64(descSize * len(descs)))
	for i, r := range descs {
		if i < len(descs)-1 {
			r.flags |= descFNext
			r.next = uint16(i + 1)
		}
		d.must(d.mem.WriteAt(r.bytes(), table+descSize*memory.GuestAddress(i)))
	}
	head := d.nextDesc
	d.nextDesc = (d.nextDesc + 1) % d.cfg.Size
	d.putDesc(head, rawDesc{addr: uint64(table), len: uint32(descSize * len(descs)), flags: descFIndirect})
	d.publish(head)
	return head
}

// publish puts head in the avail ring, then moves avail.idx (§2.7.13).
func (d *driver) publish(head uint16) {
	slot := memory.GuestAddress(d.availIdx % d.cfg.Size)
	d.must(d.mem.WriteUint16(d.cfg.Driver+availRing+2*slot, head))
	d.availIdx++
	d.setAvailIdx(d.availIdx)
}

func (d *driver) setAvailIdx(v uint16) { d.must(d.mem.StoreUint16Atomic(d.cfg.Driver+availIdx, v)) }
func (d *driver) setAvailFlags(v uint16) {
	d.must(d.mem.StoreUint16Atomic(d.cfg.Driver+availFlags, v))
}

func (d *driver) setUsedEvent(v uint16) {
	d.must(d.mem.StoreUint16Atomic(d.cfg.Driver+availRing+2*memory.GuestAddress(d.cfg.Size), v))
}

func (d *driver) availEvent() uint16 {
	v, err := d.mem.LoadUint16Atomic(d.cfg.Device + usedRing + usedElemSize*memory.GuestAddress(d.cfg.Size))
	d.must(err)
	return v
}

func (d *driver) usedIdx() uint16 {
	v, err := d.mem.LoadUint16Atomic(d.cfg.Device + usedIdx)
	d.must(err)
	return v
}

type usedElem struct{ id, len uint32 }

// used returns the used ring entries added since the last call.
func (d *driver) used() []usedElem {
	var out []usedElem
	for end := d.usedIdx(); d.usedSeen != end; d.usedSeen++ {
		a := d.cfg.Device + usedRing + usedElemSize*memory.GuestAddress(d.usedSeen%d.cfg.Size)
		id, err := d.mem.ReadUint32(a)
		d.must(err)
		n, err := d.mem.ReadUint32(a + 4)
		d.must(err)
		out = append(out, usedElem{id, n})
	}
	return out
}

// fakeNotifier records what a queue tells its transport.
type fakeNotifier struct {
	mu         sync.Mutex
	interrupts int
	broken     []error
	irq        chan struct{} // if set, gets a value per interrupt
}

func (n *fakeNotifier) Interrupt() {
	n.mu.Lock()
	n.interrupts++
	n.mu.Unlock()
	if n.irq != nil {
		n.irq <- struct{}{}
	}
}

func (n *fakeNotifier) Broken(err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.broken = append(n.broken, err)
}

func (n *fakeNotifier) counts() (interrupts, broken int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.interrupts, len(n.broken)
}

func newTestRAM(t testing.TB, size uint64) *memory.RAM {
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

func newTestKick(t testing.TB) *eventfd.EventFD {
	t.Helper()
	kick, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := kick.Close(); err != nil {
			t.Error(err)
		}
	})
	return kick
}

type testQueue struct {
	*Queue
	drv  *driver
	n    *fakeNotifier
	kick *eventfd.EventFD
}

func newTestQueue(t testing.TB, size uint16, features uint64) testQueue {
	t.Helper()
	mem := newTestRAM(t, 4*memory.MiB)
	drv := newDriver(t, mem, size)
	n := &fakeNotifier{}
	kick := newTestKick(t)
	q, err := NewQueue(mem, drv.cfg, features, kick, n)
	if err != nil {
		t.Fatal(err)
	}
	return testQueue{Queue: q, drv: drv, n: n, kick: kick}
}

// mustPop pops one chain, failing the test if there is none.
func (tq testQueue) mustPop(t testing.TB) Chain {
	t.Helper()
	c, ok, err := tq.Pop()
	if err != nil || !ok {
		t.Fatalf("Pop() = %v, %v; want a chain", ok, err)
	}
	return c
}
