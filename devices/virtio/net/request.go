package net

import (
	"errors"
	"fmt"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/net/tap"
	"github.com/govmm/govmm/memory"
)

// struct virtio_net_hdr_v1 (virtio 1.2 §5.1.6): flags u8, gso_type u8, then
// le16 hdr_len, gso_size, csum_start, csum_offset, num_buffers. The tap uses
// the same layout (TUNSETVNETHDRSZ 12), so headers pass through unchanged
// except for what §5.1.6.4 makes the device fill in on receive.
const (
	hdrLen        = tap.HeaderLen
	hdrFlags      = 0
	hdrNumBuffers = 10
)

// Frame bounds: an Ethernet header, and at most a 64 KiB GSO packet behind
// it. hdrLen+maxFrame is the 65562-byte buffer §5.1.6.3.1 asks a driver
// without mergeable buffers to provide.
const (
	minFrame  = 14
	maxFrame  = 65550
	maxPacket = hdrLen + maxFrame
	// maxIov is the kernel's UIO_MAXIOV, the most buffers one writev takes.
	maxIov = 1024
)

// errDrop marks a transmit chain that is well formed but whose frame no tap
// would take: the frame is dropped and the chain returned.
var errDrop = errors.New("frame dropped")

// parseTx checks a transmit chain (§5.1.6.2) and returns its header and frame
// as host slices appended to iov, in order, for one writev. An error wrapping
// errDrop means drop the frame; any other breaks the queue.
func parseTx(mem *memory.RAM, c virtio.Chain, iov [][]byte) ([][]byte, error) {
	if len(c.Writable) > 0 {
		return iov, fmt.Errorf("tx chain at head %d has device-writable buffers", c.Head)
	}
	n := c.ReadableLen()
	if n < hdrLen {
		return iov, fmt.Errorf("tx chain at head %d holds %d bytes, less than the %d-byte header", c.Head, n, hdrLen)
	}
	if f := n - hdrLen; f < minFrame || f > maxFrame || len(c.Readable) > maxIov {
		return iov, fmt.Errorf("tx chain at head %d: %d-byte frame in %d buffers: %w", c.Head, f, len(c.Readable), errDrop)
	}
	for _, b := range c.Readable {
		s, err := mem.Slice(b.Addr, uint64(b.Len))
		if err != nil {
			return iov, fmt.Errorf("tx chain at head %d: %w", c.Head, err)
		}
		iov = append(iov, s)
	}
	return iov, nil
}

// checkRx checks a receive chain: it must hold at least the header
// (§5.1.6.3.1), which is all a packet with mergeable buffers needs of it.
// Device-readable buffers in front are ignored.
func checkRx(c virtio.Chain) error {
	if n := c.WritableLen(); n < hdrLen {
		return fmt.Errorf("rx chain at head %d has %d device-writable bytes, less than the %d-byte header", c.Head, n, hdrLen)
	}
	return nil
}

// copyToChain copies the start of p into c's device-writable buffers and
// returns how many bytes it copied.
func copyToChain(mem *memory.RAM, c virtio.Chain, p []byte) (int, error) {
	n := 0
	for _, b := range c.Writable {
		if n == len(p) {
			break
		}
		s, err := mem.Slice(b.Addr, uint64(b.Len))
		if err != nil {
			return n, fmt.Errorf("rx chain at head %d: %w", c.Head, err)
		}
		n += copy(s, p[n:])
	}
	return n, nil
}
