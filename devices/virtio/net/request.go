package net

import (
	"encoding/binary"
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
	hdrGSOType    = 1
	hdrHdrLen     = 2
	hdrGSOSize    = 4
	hdrCsumStart  = 6
	hdrCsumOffset = 8
	hdrNumBuffers = 10
)

// Header flags and GSO types (§5.1.6). Only NEEDS_CSUM is the driver's to
// set on transmit; DATA_VALID and RSC_INFO are the device's, on receive.
const (
	flagNeedsCsum = 1
	gsoNone       = 0
	gsoTCPv4      = 1
	gsoTCPv6      = 4
	gsoECN        = 0x80
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
// errDrop means drop the frame; any other breaks the queue. features are the
// negotiated ones, which the header's offloads must keep to.
func parseTx(mem *memory.RAM, c virtio.Chain, features uint64, iov [][]byte) ([][]byte, error) {
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
	var h [hdrLen]byte // the header may span buffers; the copy is on the stack
	copyPrefix(h[:], iov)
	if err := checkTxHeader(&h, features, int(n-hdrLen)); err != nil {
		return iov, fmt.Errorf("tx chain at head %d: %w: %w", c.Head, err, errDrop)
	}
	return iov, nil
}

// checkTxHeader checks a transmit header against the negotiated features
// and the frame behind it (§5.1.6.2.1), before the tap and the host's
// network stack act on it: a checksum or segmentation offload the driver
// did not negotiate, or offsets outside the frame, are refused. The host
// kernel checks too, but what the driver agreed to is only known here.
func checkTxHeader(h *[hdrLen]byte, features uint64, frame int) error {
	le := binary.LittleEndian
	flags, gso := h[hdrFlags], h[hdrGSOType]
	if flags&^flagNeedsCsum != 0 {
		return fmt.Errorf("header flags %#x: only NEEDS_CSUM is the driver's", flags)
	}
	if flags&flagNeedsCsum != 0 {
		if features&featureCsum == 0 {
			return errors.New("NEEDS_CSUM without VIRTIO_NET_F_CSUM")
		}
		start, off := int(le.Uint16(h[hdrCsumStart:])), int(le.Uint16(h[hdrCsumOffset:]))
		if start+off+2 > frame {
			return fmt.Errorf("checksum at %d+%d is outside the %d-byte frame", start, off, frame)
		}
	}
	if gso == gsoNone {
		return nil
	}
	switch {
	case gso&gsoECN != 0: // VIRTIO_NET_F_HOST_ECN is never offered
		return fmt.Errorf("GSO type %#x: ECN without VIRTIO_NET_F_HOST_ECN", gso)
	case gso == gsoTCPv4 && features&featureHostTSO4 != 0:
	case gso == gsoTCPv6 && features&featureHostTSO6 != 0:
	default:
		return fmt.Errorf("GSO type %#x was not negotiated", gso)
	}
	if flags&flagNeedsCsum == 0 {
		return errors.New("a GSO frame without NEEDS_CSUM")
	}
	if size := le.Uint16(h[hdrGSOSize:]); size == 0 {
		return errors.New("a GSO frame with gso_size 0")
	}
	if hl := int(le.Uint16(h[hdrHdrLen:])); hl > frame {
		return fmt.Errorf("hdr_len %d is beyond the %d-byte frame", hl, frame)
	}
	return nil
}

// copyPrefix fills dst from the start of the slices in iov.
func copyPrefix(dst []byte, iov [][]byte) {
	n := 0
	for _, s := range iov {
		if n == len(dst) {
			return
		}
		n += copy(dst[n:], s)
	}
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
