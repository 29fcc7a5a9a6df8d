package hostile

import (
	"fmt"

	"github.com/govmm/govmm/guest/report"
)

// virtio-blk request types (virtio 1.2 §5.2.6).
const (
	blkIn    = 0
	blkOut   = 1
	blkFlush = 4
	blkGetID = 8

	blkIOErr  = 1 // VIRTIO_BLK_S_IOERR
	blkUnsupp = 2 // VIRTIO_BLK_S_UNSUPP

	blkHeaderLen = 16
	netHeaderLen = 12 // struct virtio_net_hdr with VERSION_1 (virtio 1.2 §5.1.6)
)

// blkRequest publishes a well-formed request of n bytes on fresh pages.
func (e *env) blkRequest(v *vq, typ uint32, sector uint64, n uint32) error {
	p, err := e.m.page()
	if err != nil {
		return err
	}
	return e.blkRequestAt(v, 3*int(v.availIdx), typ, sector, page{b: p.b[:n], phys: p.phys})
}

// blkRequestAt publishes header, data and status in descriptors base to
// base+2; the header and status go on a fresh page.
func (e *env) blkRequestAt(v *vq, base int, typ uint32, sector uint64, data page) error {
	return e.blkChain(v, base, blkShape{typ: typ, sector: sector, hdrLen: blkHeaderLen, data: data,
		dataFlags: dataFlags(typ), statusFlags: fWrite})
}

func dataFlags(typ uint32) uint16 {
	if typ == blkOut {
		return 0
	}
	return fWrite
}

// blkShape is a request with every part the driver may get wrong.
type blkShape struct {
	typ                    uint32
	sector                 uint64
	hdrLen                 uint32
	data                   page // none if data.b is nil
	dataFlags, statusFlags uint16
	noStatus               bool
}

// seg is one descriptor's buffer.
type seg struct {
	addr  uint64
	n     uint32
	flags uint16
}

func (e *env) blkChain(v *vq, base int, s blkShape) error {
	h, err := e.m.page()
	if err != nil {
		return err
	}
	le.PutUint32(h.b[0:], s.typ)
	le.PutUint64(h.b[8:], s.sector)
	h.b[512] = 0xee // the status byte, until the device writes one
	descs := []seg{{h.phys, s.hdrLen, 0}}
	if s.data.b != nil {
		descs = append(descs, seg{s.data.phys, uint32(len(s.data.b)), s.dataFlags})
	}
	if !s.noStatus {
		descs = append(descs, seg{h.phys + 512, 1, s.statusFlags})
	}
	for i, d := range descs {
		flags := d.flags
		if i < len(descs)-1 {
			flags |= fNext
		}
		v.setDesc(base+i, d.addr, d.n, flags, uint16(base+i+1))
	}
	v.push(uint16(base))
	return nil
}

// blkCase offers the spare disk one request of shape s and reports the
// status byte the device wrote (0xee: none), which must be want unless
// want is -1.
func blkCase(s blkShape, dataLen, want int) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		var statusByte []byte
		fields, err := e.onQueue(targets[1], func(e *env, v *vq) error {
			s := s
			if dataLen > 0 {
				p, err := e.m.page()
				if err != nil {
					return err
				}
				s.data = page{b: p.b[:dataLen], phys: p.phys}
			}
			if s.sector == sectorPastEnd {
				s.sector = e.blk.rd(e.blk.devcfg, 8) - 1
			}
			if err := e.blkChain(v, 0, s); err != nil {
				return err
			}
			statusByte = e.m.mem[(e.m.next-1)*pageSize+512:][:1]
			return nil
		})
		if statusByte != nil {
			fields = append(fields, kv("blk_status", statusByte[0]))
			if want >= 0 && err == nil && int(statusByte[0]) != want {
				err = fmt.Errorf("status byte %d, want %d", statusByte[0], want)
			}
		}
		return fields, err
	}
}

// sectorPastEnd stands for the disk's last sector, read from its config.
const sectorPastEnd = 1<<64 - 2

// netFrame publishes a header and an n-byte broadcast frame of an
// experimental EtherType, in one descriptor at base.
func netFrame(v *vq, base int, p page, n int) error {
	clear(p.b[:netHeaderLen])
	f := p.b[netHeaderLen:]
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x6b, 0, 1, 0x88, 0xb5})
	v.setDesc(base, p.phys, uint32(netHeaderLen+n), 0, 0)
	v.push(uint16(base))
	return nil
}

// netCase offers the spare NIC's transmit queue the chain descs builds.
func netCase(build func(v *vq, p page)) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		return e.onQueue(targets[2], func(e *env, v *vq) error {
			p, err := e.m.page()
			if err == nil {
				build(v, p)
			}
			return err
		})
	}
}

func blkNetCases() []kase {
	ok := blkShape{typ: blkIn, hdrLen: blkHeaderLen, dataFlags: fWrite, statusFlags: fWrite}
	with := func(f func(s *blkShape)) blkShape { s := ok; f(&s); return s }
	return []kase{
		{"blk-sector-overflow", blkCase(with(func(s *blkShape) { s.sector = 1<<64 - 4 }), 4096, blkIOErr)},
		{"blk-sector-bytes-overflow", blkCase(with(func(s *blkShape) { s.sector = 1 << 55 }), 4096, blkIOErr)},
		{"blk-sector-past-end", blkCase(with(func(s *blkShape) { s.sector = sectorPastEnd }), 4096, blkIOErr)},
		{"blk-status-readonly", refused(blkCase(with(func(s *blkShape) { s.statusFlags = 0 }), 512, -1))},
		{"blk-short-header", refused(blkCase(with(func(s *blkShape) { s.hdrLen = 8 }), 512, -1))},
		{"blk-no-status", blkCase(with(func(s *blkShape) { s.noStatus = true }), 512, -1)},
		{"blk-bad-type", blkCase(with(func(s *blkShape) { s.typ = 0x7fffffff }), 512, blkUnsupp)},
		{"blk-getid-short", blkCase(with(func(s *blkShape) { s.typ = blkGetID }), 3, -1)},
		{"blk-out-into-writable", blkCase(with(func(s *blkShape) { s.typ, s.dataFlags = blkOut, fWrite }), 512, -1)},
		{"blk-in-from-readonly", blkCase(with(func(s *blkShape) { s.dataFlags = 0 }), 512, -1)},
		{"blk-odd-length", blkCase(ok, 511, -1)},
		{"blk-flush-with-data", blkCase(with(func(s *blkShape) { s.typ, s.sector = blkFlush, 1<<63 }), 4096, -1)},
		{"net-oversized", netCase(func(v *vq, p page) {
			v.setDesc(0, p.phys, netHeaderLen, fNext, 1)
			v.setDesc(1, p.phys, 128<<10, fNext, 2) // the RAM after the page
			v.setDesc(2, p.phys, 64<<10, 0, 0)
			v.push(0)
		})},
		{"net-zero-bytes", refused(netCase(func(v *vq, p page) {
			v.setDesc(0, p.phys, 0, 0, 0)
			v.push(0)
			v.setDesc(1, p.phys, netHeaderLen, fNext, 2) // a header and an empty frame
			v.setDesc(2, p.phys, 0, 0, 0)
			v.push(1)
		}))},
		{"net-bad-offload", netCase(func(v *vq, p page) {
			// NEEDS_CSUM at a start past the frame, TCPv4 GSO of 1-byte
			// segments: offloads the driver never negotiated.
			p.b[0], p.b[1] = 1, 1
			le.PutUint16(p.b[2:], 14)
			le.PutUint16(p.b[4:], 1)
			le.PutUint16(p.b[6:], 0xfff0)
			le.PutUint16(p.b[8:], 0xfff0)
			v.setDesc(0, p.phys, netHeaderLen+60, 0, 0)
			v.push(0)
		})},
	}
}
