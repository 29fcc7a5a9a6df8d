package rng

import (
	"errors"

	"github.com/govmm/govmm/devices/virtio"
)

// maxFill bounds the bytes given per request, so one huge buffer cannot
// keep the device busy; the used length tells the driver how many it got.
const maxFill = 64 << 10

// errReadable: the driver must offer only device-writable buffers (§5.4.6.1).
var errReadable = errors.New("virtio-rng request has device-readable buffers")

// parse returns the buffers to fill, at most maxFill bytes in all.
func parse(c virtio.Chain) ([]virtio.Buffer, error) {
	if len(c.Readable) > 0 {
		return nil, errReadable
	}
	var out []virtio.Buffer
	left := uint32(maxFill)
	for _, b := range c.Writable {
		if left == 0 {
			break
		}
		b.Len = min(b.Len, left)
		left -= b.Len
		out = append(out, b)
	}
	return out, nil
}
