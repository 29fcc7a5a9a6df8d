package blk

import (
	"errors"
	"slices"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// chainBuilder places buffers in guest memory like a driver would, without
// a ring: parse only needs a Chain and the RAM.
type chainBuilder struct {
	t    *testing.T
	mem  *memory.RAM
	next memory.GuestAddress
}

func (b *chainBuilder) buf(p []byte) virtio.Buffer {
	b.t.Helper()
	a := b.next
	if err := b.mem.WriteAt(p, a); err != nil {
		b.t.Fatal(err)
	}
	b.next += memory.GuestAddress(len(p)+15) &^ 15
	return virtio.Buffer{Addr: a, Len: uint32(len(p))}
}

func (b *chainBuilder) chain(readable [][]byte, writable []uint32) virtio.Chain {
	var c virtio.Chain
	for _, p := range readable {
		c.Readable = append(c.Readable, b.buf(p))
	}
	for _, n := range writable {
		c.Writable = append(c.Writable, b.buf(make([]byte, n)))
	}
	return c
}

var testLimits = limits{sectors: 100, discard: true, writeZeroes: true, maxSegments: 4, maxSegSector: 64}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

func TestParse(t *testing.T) {
	ro := testLimits
	ro.readOnly = true
	noDiscard := testLimits
	noDiscard.discard, noDiscard.writeZeroes = false, false
	for _, tc := range []struct {
		name     string
		lim      limits
		readable [][]byte
		writable []uint32
		result   byte
		dataLen  uint64
		offset   int64
		ranges   int
	}{
		{"read", testLimits, [][]byte{header(typeIn, 2)}, []uint32{1024, 1}, statusOK, 1024, 1024, 0},
		{"read, status shares the data buffer", testLimits, [][]byte{header(typeIn, 1)}, []uint32{513}, statusOK, 512, 512, 0},
		{"read, empty trailing buffer", testLimits, [][]byte{header(typeIn, 0)}, []uint32{512, 1, 0}, statusOK, 512, 0, 0},
		{"read last sector", testLimits, [][]byte{header(typeIn, 99)}, []uint32{512, 1}, statusOK, 512, 99 * 512, 0},
		{"read past the end", testLimits, [][]byte{header(typeIn, 99)}, []uint32{1024, 1}, statusIOErr, 1024, 0, 0},
		{"read at a sector that overflows", testLimits, [][]byte{header(typeIn, 1<<63)}, []uint32{512, 1}, statusIOErr, 512, 0, 0},
		{"read of a partial sector", testLimits, [][]byte{header(typeIn, 0)}, []uint32{511, 1}, statusIOErr, 511, 0, 0},
		{"write, header split", testLimits, [][]byte{header(typeOut, 3)[:5], header(typeOut, 3)[5:], make([]byte, 512)}, []uint32{1}, statusOK, 512, 1536, 0},
		{"write, data after header in one buffer", testLimits, [][]byte{cat(header(typeOut, 3), make([]byte, 512))}, []uint32{1}, statusOK, 512, 1536, 0},
		{"write on a read-only disk", ro, [][]byte{header(typeOut, 0), make([]byte, 512)}, []uint32{1}, statusIOErr, 512, 0, 0},
		{"flush", testLimits, [][]byte{header(typeFlush, 0)}, []uint32{1}, statusOK, 0, 0, 0},
		{"get id", testLimits, [][]byte{header(typeGetID, 0)}, []uint32{20, 1}, statusOK, 20, 0, 0},
		{"unknown type", testLimits, [][]byte{header(7, 0)}, []uint32{1}, statusUnsupp, 0, 0, 0},
		{"discard", testLimits, [][]byte{header(typeDiscard, 0), segment(0, 8, 0), segment(50, 50, 0)}, []uint32{1}, statusOK, 0, 0, 2},
		{"discard, not negotiated", noDiscard, [][]byte{header(typeDiscard, 0), segment(0, 8, 0)}, []uint32{1}, statusUnsupp, 0, 0, 0},
		{"discard with unmap", testLimits, [][]byte{header(typeDiscard, 0), segment(0, 8, flagUnmap)}, []uint32{1}, statusUnsupp, 0, 0, 0},
		{"discard, no segment", testLimits, [][]byte{header(typeDiscard, 0)}, []uint32{1}, statusUnsupp, 0, 0, 0},
		{"discard, partial segment", testLimits, [][]byte{header(typeDiscard, 0), segment(0, 8, 0)[:12]}, []uint32{1}, statusUnsupp, 0, 0, 0},
		{"discard, too many segments", testLimits, [][]byte{header(typeDiscard, 0), segment(0, 1, 0), segment(1, 1, 0), segment(2, 1, 0), segment(3, 1, 0), segment(4, 1, 0)}, []uint32{1}, statusUnsupp, 0, 0, 0},
		{"discard, too many sectors", testLimits, [][]byte{header(typeDiscard, 0), segment(0, 65, 0)}, []uint32{1}, statusIOErr, 0, 0, 0},
		{"discard past the end", testLimits, [][]byte{header(typeDiscard, 0), segment(99, 2, 0)}, []uint32{1}, statusIOErr, 0, 0, 0},
		{"discard on a read-only disk", ro, [][]byte{header(typeDiscard, 0), segment(0, 1, 0)}, []uint32{1}, statusIOErr, 0, 0, 0},
		{"write zeroes, unmap", testLimits, [][]byte{header(typeWriteZeroes, 0), segment(0, 8, flagUnmap)}, []uint32{1}, statusOK, 0, 0, 1},
		{"write zeroes, unknown flag", testLimits, [][]byte{header(typeWriteZeroes, 0), segment(0, 8, 2)}, []uint32{1}, statusUnsupp, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := virtiotest.NewRAM(t, memory.MiB)
			b := &chainBuilder{t: t, mem: mem}
			c := b.chain(tc.readable, tc.writable)
			req, err := parse(mem, c, tc.lim, new(parseRoom))
			if err != nil {
				t.Fatal(err)
			}
			if req.result != tc.result {
				t.Fatalf("result %d, want %d", req.result, tc.result)
			}
			if req.written != uint32(c.WritableLen()) {
				t.Errorf("written %d, want %d", req.written, c.WritableLen())
			}
			if req.status.Len != 1 {
				t.Errorf("status buffer %+v", req.status)
			}
			if tc.result != statusOK {
				return
			}
			if got := length(req.data); got != tc.dataLen {
				t.Errorf("data length %d, want %d", got, tc.dataLen)
			}
			if req.offset != tc.offset {
				t.Errorf("offset %d, want %d", req.offset, tc.offset)
			}
			if len(req.ranges) != tc.ranges {
				t.Errorf("%d ranges, want %d", len(req.ranges), tc.ranges)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		readable [][]byte
		writable []uint32
	}{
		{"no writable buffer", [][]byte{header(typeIn, 0)}, nil},
		{"only empty writable buffers", [][]byte{header(typeFlush, 0)}, []uint32{0, 0}},
		{"no header", nil, []uint32{1}},
		{"short header", [][]byte{header(typeIn, 0)[:15]}, []uint32{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := virtiotest.NewRAM(t, memory.MiB)
			b := &chainBuilder{t: t, mem: mem}
			if _, err := parse(mem, b.chain(tc.readable, tc.writable), testLimits, new(parseRoom)); !errors.Is(err, errMalformed) {
				t.Fatalf("got %v, want errMalformed", err)
			}
		})
	}
}

func TestParseKeepsBuffersInsideTheChain(t *testing.T) {
	mem := virtiotest.NewRAM(t, memory.MiB)
	b := &chainBuilder{t: t, mem: mem, next: 0x1000}
	c := b.chain([][]byte{cat(header(typeOut, 0), make([]byte, 100)), make([]byte, 412)}, []uint32{3})
	req, err := parse(mem, c, testLimits, new(parseRoom))
	if err != nil {
		t.Fatal(err)
	}
	want := []virtio.Buffer{{Addr: c.Readable[0].Addr + headerSize, Len: 100}, c.Readable[1]}
	if !slices.Equal(req.data, want) {
		t.Errorf("data %+v, want %+v", req.data, want)
	}
	if req.status != (virtio.Buffer{Addr: c.Writable[0].Addr + 2, Len: 1}) {
		t.Errorf("status %+v", req.status)
	}
}

func TestHostSlicesMergesGuestContiguousBuffers(t *testing.T) {
	mem := virtiotest.NewRAM(t, memory.MiB)
	bufs := []virtio.Buffer{
		{Addr: 0x1000, Len: 512}, {Addr: 0x1200, Len: 512}, {Addr: 0x1400, Len: 0}, // one run
		{Addr: 0x3000, Len: 100},           // apart
		{Addr: memory.MiB - 512, Len: 512}, // last bytes of RAM
	}
	iov, err := appendHostSlices(nil, mem, bufs)
	if err != nil {
		t.Fatal(err)
	}
	var lens []int
	for _, p := range iov {
		lens = append(lens, len(p))
	}
	if !slices.Equal(lens, []int{1024, 100, 512}) {
		t.Fatalf("slice lengths %v, want [1024 100 512]", lens)
	}
}

func TestAdvance(t *testing.T) {
	iov := [][]byte{make([]byte, 3), make([]byte, 5), make([]byte, 2)}
	iov = advance(iov, 4)
	if len(iov) != 2 || len(iov[0]) != 4 || len(iov[1]) != 2 {
		t.Fatalf("after 4 bytes: %d slices, first %d", len(iov), len(iov[0]))
	}
	if iov = advance(iov, 6); len(iov) != 0 {
		t.Fatalf("after all bytes: %d slices left", len(iov))
	}
}
