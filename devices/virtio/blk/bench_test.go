package blk

import (
	"testing"

	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// benchmarkRequest measures one request of n data buffers of size bytes
// each, spread apart in guest memory so none merge, the way Linux sends an
// O_DIRECT request from scattered pages: the per-descriptor cost of the
// whole path (chain walk, parse, preadv/pwritev, used ring).
func benchmarkRequest(b *testing.B, kind uint32, n int, size uint32) {
	img := newImage(b, make([]byte, 8*memory.MiB))
	d := openDisk(b, Options{Path: img})
	r := start(b, d, 1)
	drv := r.drvs[0]
	hdr := drv.Alloc(headerSize, header(kind, 0))
	flags := uint16(0)
	if kind == typeIn {
		flags = virtiotest.DescFWrite
	}
	descs := []virtiotest.Desc{{Addr: hdr.Addr, Len: hdr.Len}}
	for range n {
		buf := drv.Alloc(2*size, nil)
		descs = append(descs, virtiotest.Desc{Addr: buf.Addr, Len: size, Flags: flags})
	}
	st := drv.Alloc(1, nil)
	descs = append(descs, virtiotest.Desc{Addr: st.Addr, Len: 1, Flags: virtiotest.DescFWrite})
	head := drv.AddDescs(descs, true)
	drv.Kick()
	drv.WaitUsed()
	b.SetBytes(int64(n) * int64(size))
	b.ResetTimer()
	for range b.N {
		drv.Publish(head)
		drv.Kick()
		drv.WaitUsed()
	}
}

func BenchmarkWrite254Pages(b *testing.B) { benchmarkRequest(b, typeOut, 254, 4096) }
func BenchmarkRead254Pages(b *testing.B)  { benchmarkRequest(b, typeIn, 254, 4096) }
func BenchmarkWrite1MiBOneBuffer(b *testing.B) {
	benchmarkRequest(b, typeOut, 1, 1<<20)
}
