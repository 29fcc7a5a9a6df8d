package virtio

import (
	"errors"
	"io"
	"testing"

	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/memory"
)

// The fuzz input is a 4-byte header, then an image of guest memory from
// address 0, where the descriptor table starts (see chainCase.image). The
// rings live above the image.
const (
	fuzzImageMax = 0x100000
	fuzzAvail    = memory.GuestAddress(0x100000)
	fuzzUsed     = memory.GuestAddress(0x120000)
	fuzzRWMax    = 64 * memory.KiB // bytes read and written per chain
)

// fuzzInput encodes: queue size 1<<sizeLog; features bit 0 INDIRECT_DESC, bit
// 1 EVENT_IDX; avail.idx = count; avail ring entry i = headBase+i.
func fuzzInput(sizeLog, features, count, headBase byte, image []byte) []byte {
	return append([]byte{sizeLog, features, count, headBase}, image...)
}

func FuzzChain(f *testing.F) {
	for _, c := range chainCases {
		var feat byte
		if c.indirectOK {
			feat = 1
		}
		f.Add(fuzzInput(c.sizeLog, feat, 1, byte(c.head), c.image()))
	}
	eight := chainCase{table: []rawDesc{
		{0x1000, 4, 0, 0}, {0x2000, 4, fWrite, 0}, {0x3000, 4, fNext, 3}, {0x4000, 4, fWrite, 0},
		{uint64(caseIndirect), 32, fInd, 0}, {0, 0, 0, 0}, {0x5000, 1, 0, 0}, {0x6000, 1, fWrite, 0},
	}, indirect: []rawDesc{{0x7000, 8, fNext, 1}, {0x8000, 8, fWrite, 0}}}
	f.Add(fuzzInput(3, 3, 8, 0, eight.image()))  // eight chains, EVENT_IDX
	f.Add(fuzzInput(3, 1, 20, 0, eight.image())) // avail.idx too far ahead
	f.Add(fuzzInput(3, 0, 9, 0, eight.image()))  // avail.idx one too far
	f.Add(fuzzInput(15, 3, 255, 200, nil))       // big queue, empty chains
	mem := newTestRAM(f, caseRAM)
	kick := newTestKick(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		all, err := mem.Slice(0, caseRAM)
		if err != nil {
			t.Fatal(err)
		}
		clear(all)
		copy(all[:fuzzImageMax], data[4:])
		checkQueue(t, mem, kick, data[0]%16, data[1], uint16(data[2]), uint16(data[3]))
	})
}

// The fuzz seeds built from chainCases break the queue exactly when the case
// expects an error, so the corpus starts where it should.
func TestFuzzSeedsAgreeWithCases(t *testing.T) {
	mem := newTestRAM(t, caseRAM)
	kick := newTestKick(t)
	all := mustSlice(t, mem, 0, caseRAM)
	for _, c := range chainCases {
		clear(all)
		copy(all, c.image())
		var feat byte
		if c.indirectOK {
			feat = 1
		}
		if err := checkQueue(t, mem, kick, c.sizeLog, feat, 1, c.head); (err != nil) != (c.wantErr != "") {
			t.Errorf("%s: Pop error %v, want one: %v", c.name, err, c.wantErr != "")
		}
	}
}

// checkQueue pops and pushes every chain the header describes and checks
// what Pop promises. It returns Pop's error, if any.
func checkQueue(t *testing.T, mem *memory.RAM, kick *eventfd.EventFD, sizeLog, features byte, count, headBase uint16) error {
	size := uint16(1) << sizeLog
	for i := range count {
		slot := memory.GuestAddress(i % size)
		if err := mem.WriteUint16(fuzzAvail+availRing+2*slot, headBase+i); err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.WriteUint16(fuzzAvail+availIdx, count); err != nil {
		t.Fatal(err)
	}
	var feat uint64
	if features&1 != 0 {
		feat |= FeatureRingIndirectDesc
	}
	if features&2 != 0 {
		feat |= FeatureRingEventIdx
	}
	n := &fakeNotifier{}
	q, err := NewQueue(mem, QueueConfig{Size: size, Desc: 0, Driver: fuzzAvail, Device: fuzzUsed}, feat, kick, n)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Notify()
	for popped := uint16(0); ; popped++ {
		c, ok, err := q.Pop()
		if err != nil {
			if _, broken := n.counts(); !errors.Is(err, ErrBroken) || broken != 1 {
				t.Fatalf("Pop error %v (Broken called %d times)", err, broken)
			}
			return err
		}
		if count > size || (ok && popped == count) {
			t.Fatalf("avail.idx %d with queue size %d gave chain %d", count, size, popped+1)
		}
		if !ok {
			if popped != count {
				t.Fatalf("queue empty after %d of %d chains", popped, count)
			}
			return nil
		}
		checkChain(t, q, c, size)
	}
}

// checkChain checks one chain's promises, reads it and writes back what its
// writable buffers hold, so guest memory, and so the next chain, is unchanged.
func checkChain(t *testing.T, q *Queue, c Chain, size uint16) {
	if len(c.Readable)+len(c.Writable) > int(size) {
		t.Fatalf("chain of %d buffers in a queue of %d", len(c.Readable)+len(c.Writable), size)
	}
	for _, b := range append(c.Readable, c.Writable...) {
		if _, err := q.Mem().Slice(b.Addr, uint64(b.Len)); err != nil || b.Len == 0 {
			t.Fatalf("buffer %+v: %v", b, err)
		}
	}
	want := min(c.ReadableLen(), fuzzRWMax)
	if n, err := io.CopyN(io.Discard, NewReader(q.Mem(), c.Readable), int64(want)); err != nil || uint64(n) != want {
		t.Fatalf("read %d of %d readable bytes: %v", n, want, err)
	}
	same := make([]byte, min(c.WritableLen(), fuzzRWMax))
	if _, err := io.ReadFull(NewReader(q.Mem(), c.Writable), same); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(q.Mem(), c.Writable)
	if _, err := w.Write(same); err != nil || w.Written() != uint32(len(same)) {
		t.Fatalf("write %d bytes: %v", len(same), err)
	}
	if err := q.Push(c.Head, w.Written()); err != nil {
		t.Fatal(err)
	}
}
