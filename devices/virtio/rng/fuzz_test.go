package rng

import (
	"errors"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

const fuzzRAM = 256 * memory.KiB

// FuzzFill hands fill chains a guest could write, with or without
// INDIRECT_DESC. A chain with a device-readable buffer is refused and
// nothing is written; otherwise the first maxFill bytes of its writable
// buffers, in order, and nothing else in guest memory, receive entropy, and
// the used length counts them.
func FuzzFill(f *testing.F) {
	raw := virtiotest.NewRawQueue(f, fuzzRAM)
	mem, all := raw.RAM(), raw.Image()
	before := make([]byte, fuzzRAM)
	for i, descs := range virtiotest.RawSeeds() {
		f.Add(i >= 6, descs)
	}
	f.Add(false, virtiotest.RawDesc(virtiotest.RawData, maxFill+1000, virtiotest.DescFWrite, 0))
	f.Fuzz(func(t *testing.T, indirect bool, descs []byte) {
		_, c, ok := raw.Pop(t, descs, indirect)
		if !ok {
			return
		}
		copy(before, all)
		n, err := fill(mem, c)
		if wrong := len(c.Readable) > 0; wrong != errors.Is(err, errReadable) || !wrong && err != nil {
			t.Fatalf("fill of a chain with %d readable buffers: %v", len(c.Readable), err)
		}
		if err != nil {
			virtiotest.Unchanged(t, before, all)
			return
		}
		if uint64(n) != min(c.WritableLen(), maxFill) {
			t.Fatalf("filled %d bytes of a chain with %d writable", n, c.WritableLen())
		}
		virtiotest.Unchanged(t, before, all, firstBytes(c.Writable, maxFill)...)
	})
}

// firstBytes is the buffers that hold the first n bytes of bufs.
func firstBytes(bufs []virtio.Buffer, n uint32) []virtio.Buffer {
	var out []virtio.Buffer
	for _, b := range bufs {
		b.Len = min(b.Len, n)
		n -= b.Len
		out = append(out, b)
	}
	return out
}
