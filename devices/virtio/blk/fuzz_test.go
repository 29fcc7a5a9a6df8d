package blk

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

const (
	fuzzRAM     = memory.MiB
	fuzzSectors = 32
)

// fuzzChain builds a chain from the fuzzer's bytes: a count of readable and
// writable buffers, a length and placement per buffer, then the bytes the
// buffers hold, laid out one after another in guest memory. A placement
// with its top bit set puts the buffer across the end of RAM, which a queue
// would have refused: parse and serve must still fail cleanly.
func fuzzChain(t *testing.T, mem *memory.RAM, in []byte) (virtio.Chain, bool) {
	if len(in) < 2 {
		return virtio.Chain{}, false
	}
	nr, nw := int(in[0]%8), int(in[1]%8)
	in = in[2:]
	if len(in) < 3*(nr+nw) {
		return virtio.Chain{}, false
	}
	var c virtio.Chain
	next := memory.GuestAddress(0)
	for i := range nr + nw {
		n := uint32(binary.LittleEndian.Uint16(in[3*i:]) % 4096)
		b := virtio.Buffer{Addr: next, Len: n}
		if in[3*i+2]&0x80 != 0 {
			b.Addr = fuzzRAM - memory.GuestAddress(in[3*i+2]&0x7f)
		} else {
			next += memory.GuestAddress(n)
		}
		if i < nr {
			c.Readable = append(c.Readable, b)
		} else {
			c.Writable = append(c.Writable, b)
		}
	}
	content := in[3*(nr+nw):]
	clear(mustSlice(t, mem, 0, uint64(next)))
	copy(mustSlice(t, mem, 0, min(uint64(len(content)), fuzzRAM)), content)
	return c, true
}

func mustSlice(t *testing.T, mem *memory.RAM, a memory.GuestAddress, n uint64) []byte {
	s, err := mem.Slice(a, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fuzzSeed(readLens, writeLens []uint16, content ...[]byte) []byte {
	out := []byte{byte(len(readLens)), byte(len(writeLens))}
	for _, n := range append(readLens, writeLens...) {
		out = binary.LittleEndian.AppendUint16(out, n)
		out = append(out, 0)
	}
	for _, p := range content {
		out = append(out, p...)
	}
	return out
}

// FuzzBlockRequest parses and executes arbitrary chains against a small
// image: nothing may panic, an accepted request stays inside the disk, and
// the image never changes size.
func FuzzBlockRequest(f *testing.F) {
	f.Add(fuzzSeed([]uint16{16}, []uint16{512, 1}, header(typeIn, 3)))
	f.Add(fuzzSeed([]uint16{16, 1024}, []uint16{1}, header(typeOut, 30), pattern(1024, 1)))
	f.Add(fuzzSeed([]uint16{16, 1024}, []uint16{1}, header(typeOut, 31), pattern(1024, 1)))
	f.Add(fuzzSeed([]uint16{16}, []uint16{512, 1}, header(typeIn, 1<<63)))
	f.Add(fuzzSeed([]uint16{16}, []uint16{1}, header(typeFlush, 0)))
	f.Add(fuzzSeed([]uint16{16}, []uint16{20, 1}, header(typeGetID, 0)))
	f.Add(fuzzSeed([]uint16{48}, []uint16{1}, header(typeDiscard, 0), segment(0, 8, 0), segment(30, 4, 0)))
	f.Add(fuzzSeed([]uint16{32}, []uint16{1}, header(typeWriteZeroes, 0), segment(4, 8, flagUnmap)))
	f.Add(fuzzSeed([]uint16{32}, []uint16{1}, header(typeWriteZeroes, 0), segment(1<<60, 1<<31, 3)))
	f.Add(fuzzSeed([]uint16{8}, []uint16{1}, header(typeIn, 0)))
	f.Add(fuzzSeed([]uint16{16}, nil, header(typeIn, 0)))
	f.Add(fuzzSeed([]uint16{16}, []uint16{0, 0}, header(typeIn, 0)))
	f.Add([]byte{1, 1, 16, 0, 0x80, 1, 0, 0x81})

	path := newImage(f, pattern(fuzzSectors*SectorSize, 9))
	mem := virtiotest.NewRAM(f, fuzzRAM)
	d := openDisk(f, Options{Path: path, Serial: "fuzz"})
	lim := d.limits(d.Features())
	f.Fuzz(func(t *testing.T, in []byte) {
		c, ok := fuzzChain(t, mem, in)
		if !ok {
			return
		}
		req, err := parse(mem, c, lim, new(parseRoom))
		if err == nil {
			checkRequest(t, c, req)
		}
		if _, err := d.serve(mem, c, lim, &scratch{}); err != nil {
			return
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() != fuzzSectors*SectorSize {
			t.Fatalf("image size changed: %v %v", fi.Size(), err)
		}
	})
}

func checkRequest(t *testing.T, c virtio.Chain, req request) {
	var last virtio.Buffer
	for _, b := range c.Writable {
		if b.Len > 0 {
			last = b
		}
	}
	if req.status != (virtio.Buffer{Addr: last.Addr + memory.GuestAddress(last.Len-1), Len: 1}) {
		t.Fatalf("status %+v is not the last writable byte of %+v", req.status, c.Writable)
	}
	if req.result != statusOK {
		return
	}
	const size = fuzzSectors * SectorSize
	if (req.kind == typeIn || req.kind == typeOut) && (req.offset < 0 || uint64(req.offset)+length(req.data) > size) {
		t.Fatalf("request [%d, +%d) outside a %d-byte disk", req.offset, length(req.data), size)
	}
	for _, r := range req.ranges {
		if r.off < 0 || r.len < 0 || r.off+r.len > size {
			t.Fatalf("range %+v outside a %d-byte disk", r, size)
		}
	}
}
