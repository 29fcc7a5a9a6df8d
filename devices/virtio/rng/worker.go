package rng

import (
	"crypto/rand"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// worker fills every chain the driver offers until the queue is stopped or
// broken.
func (d *Device) worker(q *virtio.Queue) {
	defer d.wg.Done()
	q.Serve(fill)
}

// fill writes random bytes straight into the chain's buffers and returns
// how many.
func fill(mem *memory.RAM, c virtio.Chain) (uint32, error) {
	bufs, err := parse(c)
	if err != nil {
		return 0, err
	}
	var n uint32
	for _, b := range bufs {
		p, err := mem.Slice(b.Addr, uint64(b.Len))
		if err != nil {
			return 0, err
		}
		// crypto/rand.Read uses getrandom and never fails (Go ≥ 1.24).
		rand.Read(p)
		n += b.Len
	}
	return n, nil
}
