package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// Request types (virtio 1.2 §5.2.6).
const (
	typeIn          = 0
	typeOut         = 1
	typeFlush       = 4
	typeGetID       = 8
	typeDiscard     = 11
	typeWriteZeroes = 13
)

// Status values (§5.2.6).
const (
	statusOK     = 0
	statusIOErr  = 1
	statusUnsupp = 2
)

const (
	// SectorSize is the unit of capacity and of request sectors, whatever
	// the block size (§5.2.4).
	SectorSize = 512
	// headerSize is struct virtio_blk_req's header: le32 type, le32
	// reserved, le64 sector.
	headerSize = 16
	// segmentSize is struct virtio_blk_discard_write_zeroes: le64 sector,
	// le32 num_sectors, le32 flags (§5.2.6).
	segmentSize = 16
	// flagUnmap is the only defined segment flag.
	flagUnmap = 1
	// idBytes is VIRTIO_BLK_ID_BYTES, the length of a GET_ID reply.
	idBytes = 20
)

// errMalformed is wrapped by parse errors that leave no way to answer the
// request: the chain has no header or no status byte. The queue is broken.
var errMalformed = errors.New("malformed virtio-blk request")

// limits is what parsing checks a request against: the disk and the
// features the driver accepted.
type limits struct {
	sectors      uint64 // capacity in 512-byte sectors, ≤ MaxInt64/512
	readOnly     bool
	discard      bool // VIRTIO_BLK_F_DISCARD negotiated
	writeZeroes  bool // VIRTIO_BLK_F_WRITE_ZEROES negotiated
	maxSegments  uint32
	maxSegSector uint32 // max_discard_sectors = max_write_zeroes_sectors
}

// request is one parsed virtio-blk request whose every byte range has been
// checked against the disk. Nothing has touched the disk yet.
type request struct {
	kind   uint32
	status virtio.Buffer // the device-writable status byte, last in the chain
	// written is the used length: every device-writable byte, as QEMU
	// reports it, saturated at 4 GiB-1.
	written uint32
	// result is statusOK for a request to execute, or the status to
	// return without touching the disk.
	result byte
	offset int64           // IN, OUT: byte offset of the first sector
	data   []virtio.Buffer // IN, GET_ID: writable data; OUT: readable data
	ranges []byteRange     // DISCARD, WRITE_ZEROES
}

// byteRange is one validated discard or write-zeroes segment, in bytes.
type byteRange struct {
	off, len int64
	unmap    bool
}

// parseRoom is one worker's room for the lists parse builds, reused from
// request to request so that parsing allocates nothing. A request's lists
// may be in it: they are valid until the next parse with the same room.
type parseRoom struct {
	data   []virtio.Buffer // when a buffer holds data and the status byte
	out    []virtio.Buffer // when a buffer holds the header and data
	ranges []byteRange
}

// parse turns a chain into a request. An error means the chain is
// malformed; a request the device cannot or will not serve comes back with
// result set instead.
func parse(mem *memory.RAM, c virtio.Chain, lim limits, room *parseRoom) (request, error) {
	data, status, ok := splitStatus(c.Writable, &room.data)
	if !ok {
		return request{}, fmt.Errorf("%w: no device-writable status byte", errMalformed)
	}
	var hdr [headerSize]byte
	r := virtio.NewReader(mem, c.Readable)
	if err := r.ReadFull(hdr[:]); err != nil {
		return request{}, fmt.Errorf("%w: header (%d readable bytes, want %d): %v",
			errMalformed, c.ReadableLen(), headerSize, err)
	}
	req := request{
		kind:    binary.LittleEndian.Uint32(hdr[0:]),
		status:  status,
		written: saturate32(c.WritableLen()),
	}
	sector := binary.LittleEndian.Uint64(hdr[8:])
	switch req.kind {
	case typeIn:
		req.data = data
		req.offset, req.result = lim.span(sector, length(data))
	case typeOut:
		req.data = skip(c.Readable, headerSize, &room.out)
		req.offset, req.result = lim.span(sector, length(req.data))
		if lim.readOnly {
			req.result = statusIOErr
		}
	case typeFlush:
	case typeGetID:
		req.data = data
	case typeDiscard, typeWriteZeroes:
		req.ranges, req.result = lim.segments(r, req.kind, &room.ranges)
	default:
		req.result = statusUnsupp
	}
	return req, nil
}

// span checks that n bytes from sector are whole sectors inside the disk
// and returns their byte offset.
func (lim limits) span(sector, n uint64) (int64, byte) {
	if n%SectorSize != 0 || sector > lim.sectors || n/SectorSize > lim.sectors-sector {
		return 0, statusIOErr
	}
	return int64(sector * SectorSize), statusOK
}

// segments reads and checks the discard or write-zeroes segments that follow
// the header (§5.2.6.2), into room.
func (lim limits) segments(r *virtio.Reader, kind uint32, room *[]byteRange) ([]byteRange, byte) {
	if (kind == typeDiscard && !lim.discard) || (kind == typeWriteZeroes && !lim.writeZeroes) {
		return nil, statusUnsupp
	}
	var seg [segmentSize]byte
	out := (*room)[:0]
	defer func() { *room = out[:0] }()
	for {
		err := r.ReadFull(seg[:])
		if err == io.EOF && len(out) > 0 {
			break
		}
		if err != nil || len(out) == int(lim.maxSegments) {
			return nil, statusUnsupp
		}
		sector := binary.LittleEndian.Uint64(seg[0:])
		num := binary.LittleEndian.Uint32(seg[8:])
		flags := binary.LittleEndian.Uint32(seg[12:])
		if flags&^flagUnmap != 0 || (kind == typeDiscard && flags != 0) {
			return nil, statusUnsupp
		}
		off, st := lim.span(sector, uint64(num)*SectorSize)
		if st != statusOK || num > lim.maxSegSector {
			return nil, statusIOErr
		}
		out = append(out, byteRange{off: off, len: int64(num) * SectorSize, unmap: flags&flagUnmap != 0})
	}
	if lim.readOnly {
		return nil, statusIOErr
	}
	return out, statusOK
}

// splitStatus splits the writable buffers into data and the status byte,
// the last writable byte (§5.2.6). Data that shares a buffer with the status
// byte is listed in room.
func splitStatus(bufs []virtio.Buffer, room *[]virtio.Buffer) (data []virtio.Buffer, status virtio.Buffer, ok bool) {
	for i := len(bufs) - 1; i >= 0; i-- {
		b := bufs[i]
		if b.Len == 0 {
			continue
		}
		data = bufs[:i:i]
		if b.Len > 1 {
			data = append(append((*room)[:0], data...), virtio.Buffer{Addr: b.Addr, Len: b.Len - 1})
			*room = data[:0]
		}
		return data, virtio.Buffer{Addr: b.Addr + memory.GuestAddress(b.Len-1), Len: 1}, true
	}
	return nil, virtio.Buffer{}, false
}

// skip drops the first n bytes of bufs. If that splits a buffer, the rest
// is listed in room.
func skip(bufs []virtio.Buffer, n uint64, room *[]virtio.Buffer) []virtio.Buffer {
	for len(bufs) > 0 && uint64(bufs[0].Len) <= n {
		n -= uint64(bufs[0].Len)
		bufs = bufs[1:]
	}
	if len(bufs) == 0 || n == 0 {
		return bufs
	}
	out := append((*room)[:0], virtio.Buffer{Addr: bufs[0].Addr + memory.GuestAddress(n), Len: bufs[0].Len - uint32(n)})
	out = append(out, bufs[1:]...)
	*room = out[:0]
	return out
}

func length(bufs []virtio.Buffer) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(b.Len)
	}
	return n
}

func saturate32(n uint64) uint32 {
	return uint32(min(n, 1<<32-1))
}
