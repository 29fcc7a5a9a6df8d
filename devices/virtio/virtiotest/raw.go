package virtiotest

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/memory"
)

// The layout RawQueue writes: a RawSize-entry descriptor table at 0, the
// rings above it, an indirect table at RawIndirect, and guest RAM from
// RawData up free for the buffers descriptors point at.
const (
	RawSize     = 16
	RawAvail    = memory.GuestAddress(0x1000)
	RawUsed     = memory.GuestAddress(0x2000)
	RawIndirect = memory.GuestAddress(0x3000)
	RawData     = memory.GuestAddress(0x4000)
	// RawUsedLen is the used ring's size in bytes: flags, idx, RawSize
	// elements and avail_event (§2.7.8).
	RawUsedLen = 6 + 8*RawSize
)

// RawQueue lays out queues whose descriptor tables a fuzz target writes
// whole, as a guest that writes anything it likes would, so that a device's
// parser sees what the chain walker lets through. One RawQueue serves a
// whole fuzz target: it holds the guest RAM and the kick eventfd every
// queue shares.
type RawQueue struct {
	mem  *memory.RAM
	all  []byte
	kick *eventfd.EventFD
	n    *Notifier
}

// NewRawQueue returns a RawQueue over size bytes of fresh guest RAM; size
// must exceed RawData.
func NewRawQueue(t testing.TB, size uint64) *RawQueue {
	t.Helper()
	mem := NewRAM(t, size)
	all, err := mem.Slice(0, size)
	if err != nil {
		t.Fatal(err)
	}
	kick, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kick.Close() })
	return &RawQueue{mem: mem, all: all, kick: kick, n: &Notifier{ch: make(chan struct{}, 1)}}
}

// RAM is the guest memory the queues live in.
func (r *RawQueue) RAM() *memory.RAM { return r.mem }

// Image is all of guest memory from address 0, for a target to compare.
func (r *RawQueue) Image() []byte { return r.all }

// Queue writes descs, the descriptor table and then the indirect table at
// RawIndirect (each zero-padded to RawSize entries, or cut there), clears the
// used ring, makes heads available in order and returns the device side of
// the queue.
func (r *RawQueue) Queue(t testing.TB, descs []byte, heads []uint16, features uint64) *virtio.Queue {
	t.Helper()
	var tab [16 * RawSize]byte
	copy(tab[:], descs)
	r.write(t, 0, tab[:])
	clear(tab[:])
	copy(tab[:], descs[min(len(descs), len(tab)):])
	r.write(t, RawIndirect, tab[:])
	ring := make([]byte, 4+2*RawSize+2) // flags, idx, ring, used_event
	binary.LittleEndian.PutUint16(ring[2:], uint16(len(heads)))
	for i, h := range heads[:min(len(heads), RawSize)] {
		binary.LittleEndian.PutUint16(ring[4+2*i:], h)
	}
	r.write(t, RawAvail, ring)
	r.write(t, RawUsed, make([]byte, RawUsedLen))
	q, err := virtio.NewQueue(r.mem, virtio.QueueConfig{Size: RawSize, Desc: 0, Driver: RawAvail, Device: RawUsed}, features, r.kick, r.n)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Pop is Queue with head 0 alone available, and that chain popped; ok is
// false if the chain walker refused it. indirect says whether the driver
// negotiated VIRTIO_F_INDIRECT_DESC.
func (r *RawQueue) Pop(t testing.TB, descs []byte, indirect bool) (*virtio.Queue, virtio.Chain, bool) {
	t.Helper()
	var features uint64
	if indirect {
		features = virtio.FeatureRingIndirectDesc
	}
	q := r.Queue(t, descs, []uint16{0}, features)
	c, ok, err := q.Pop()
	return q, c, ok && err == nil
}

// RawDesc encodes one struct virtq_desc (§2.7.5), for seeding a corpus.
func RawDesc(addr memory.GuestAddress, n uint32, flags, next uint16) []byte {
	return appendDesc(nil, Desc{Addr: addr, Len: n, Flags: flags, Next: next})
}

// RawTables joins a descriptor table and an indirect table as Queue takes
// them.
func RawTables(table, indirect []byte) []byte {
	out := make([]byte, 16*RawSize, 16*RawSize+len(indirect))
	copy(out, table)
	return append(out, indirect...)
}

// UsedElem returns used ring element i (§2.7.8) and the ring's idx.
func (r *RawQueue) UsedElem(t testing.TB, i int) (Used, uint16) {
	t.Helper()
	var b [8]byte
	if err := r.mem.ReadAt(b[:], RawUsed+4+memory.GuestAddress(8*(i%RawSize))); err != nil {
		t.Fatal(err)
	}
	idx, err := r.mem.ReadUint16(RawUsed + 2)
	if err != nil {
		t.Fatal(err)
	}
	return Used{ID: binary.LittleEndian.Uint32(b[:]), Len: binary.LittleEndian.Uint32(b[4:])}, idx
}

func (r *RawQueue) write(t testing.TB, a memory.GuestAddress, p []byte) {
	t.Helper()
	if err := r.mem.WriteAt(p, a); err != nil {
		t.Fatal(err)
	}
}

// Unchanged fails t if any byte of now differs from before outside the
// given buffers: what a device may write in guest memory. before and now
// are images of guest memory from address 0.
func Unchanged(t testing.TB, before, now []byte, may ...virtio.Buffer) {
	t.Helper()
	const chunk = 256
	for start := 0; start < len(before); start += chunk {
		end := min(start+chunk, len(before))
		if bytes.Equal(before[start:end], now[start:end]) {
			continue
		}
		for i := start; i < end; i++ {
			if before[i] != now[i] && !inBuffers(memory.GuestAddress(i), may) {
				t.Fatalf("guest memory at %v changed (%#x to %#x) outside the buffers the device may write", memory.GuestAddress(i), before[i], now[i])
			}
		}
	}
}

func inBuffers(a memory.GuestAddress, bufs []virtio.Buffer) bool {
	for _, b := range bufs {
		if a >= b.Addr && uint64(a-b.Addr) < uint64(b.Len) {
			return true
		}
	}
	return false
}

// RawSeeds are descriptor tables for a fuzz corpus, as Queue takes them:
// chains of device-writable buffers, device-readable ones, both, buffers
// that overlap, and the same through an indirect table.
func RawSeeds() [][]byte {
	const d, w, nx = RawData, DescFWrite, DescFNext
	readable := slices.Concat(RawDesc(d, 6, nx, 1), RawDesc(d+0x100, 9, 0, 0))
	writable := slices.Concat(RawDesc(d, 100, w|nx, 1), RawDesc(d+0x1000, 100, w, 0))
	head := RawDesc(RawIndirect, 32, DescFIndirect, 0)
	return [][]byte{
		RawDesc(d, 4096, w, 0),
		writable,
		readable,
		slices.Concat(RawDesc(d, 16, nx, 1), RawDesc(d+0x100, 16, w, 0)),
		slices.Concat(RawDesc(d, 4, w|nx, 1), RawDesc(d+2, 4, w, 0)),
		slices.Concat(RawDesc(d, 60000, w|nx, 1), RawDesc(d+60000, 10000, w, 0)),
		RawTables(head, writable),
		RawTables(head, readable),
	}
}
