package blk

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// worker serves one request queue until it is stopped or broken.
func (d *Device) worker(q *virtio.Queue, lim limits) {
	defer d.wg.Done()
	var s scratch
	q.Serve(func(mem *memory.RAM, c virtio.Chain) (uint32, error) { return d.serve(mem, c, lim, &s) })
}

// scratch is one worker's reusable room for parsing requests and for a
// transfer's host slices and iovecs: Linux sends an O_DIRECT request as up
// to seg_max separate pages, and allocating for each page showed as a fifth
// of the cost of such a request (BenchmarkWrite254Pages).
type scratch struct {
	parse  parseRoom
	slices [][]byte
	iovecs []unix.Iovec
}

// serve parses one chain, executes it and writes its status. It returns the
// used length, or an error if the chain is malformed.
func (d *Device) serve(mem *memory.RAM, c virtio.Chain, lim limits, s *scratch) (uint32, error) {
	req, err := parse(mem, c, lim, &s.parse)
	if err != nil {
		return 0, err
	}
	status := req.result
	if status == statusOK {
		status = d.execute(mem, req, s)
	}
	if err := mem.WriteAt([]byte{status}, req.status.Addr); err != nil {
		return 0, fmt.Errorf("write virtio-blk status: %w", err)
	}
	return req.written, nil
}

// execute performs a validated request and returns its status.
func (d *Device) execute(mem *memory.RAM, req request, s *scratch) byte {
	var err error
	switch req.kind {
	case typeIn:
		err = d.transfer(mem, req, false, s)
	case typeOut:
		err = d.transfer(mem, req, true, s)
	case typeFlush:
		err = d.datasync()
	case typeGetID:
		err = d.writeID(mem, req.data)
	case typeDiscard:
		err = d.discard(req.ranges)
	case typeWriteZeroes:
		err = d.writeZeroes(req.ranges)
	default:
		return statusUnsupp
	}
	if err != nil {
		d.log.Warn("virtio-blk request failed", "type", req.kind, "err", err)
		return statusIOErr
	}
	return statusOK
}

// transfer moves data between the image and guest memory with preadv or
// pwritev straight into or out of guest RAM: one system call per request
// for up to iovMax runs of guest-contiguous buffers.
func (d *Device) transfer(mem *memory.RAM, req request, write bool, s *scratch) error {
	iov, err := appendHostSlices(s.slices[:0], mem, req.data)
	s.slices = iov[:0]
	if err != nil {
		return err
	}
	return d.vectoredAll(write, iov, req.offset, s)
}

// vectoredAll reads or writes all of iov at off, with as many calls as it
// takes: blocking ones, or raw ones for IOInline.
func (d *Device) vectoredAll(write bool, iov [][]byte, off int64, s *scratch) error {
	for len(iov) > 0 {
		batch := iov[:min(len(iov), iovMax)]
		var n int
		err := control(d.file, func(fd int) error {
			var err error
			n, err = vectorIO(fd, write, d.io == IOInline, batch, off, &s.iovecs)
			return err
		})
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return err
		case n == 0:
			return io.ErrUnexpectedEOF // the image shrank underneath us
		}
		off += int64(n)
		iov = advance(iov, n)
	}
	return nil
}

// datasync is a flush: fdatasync makes the data and the size needed to read
// it back durable, without the timestamps fsync would also write through the
// file system's journal.
func (d *Device) datasync() error {
	return control(d.file, func(fd int) error {
		for {
			if err := unix.Fdatasync(fd); err != unix.EINTR {
				return err
			}
		}
	})
}

// iovMax is IOV_MAX, the most slices one preadv takes.
const iovMax = 1024

// appendHostSlices appends the host memory behind bufs to out, merging
// buffers that continue one another in guest memory (Linux often sends runs
// of pages).
func appendHostSlices(out [][]byte, mem *memory.RAM, bufs []virtio.Buffer) ([][]byte, error) {
	for i := 0; i < len(bufs); {
		run, n := bufs[i].Addr, uint64(bufs[i].Len)
		j := i + 1
		for ; j < len(bufs) && bufs[j].Addr == run+memory.GuestAddress(n); j++ {
			n += uint64(bufs[j].Len)
		}
		p, err := mem.Slice(run, n)
		if err != nil && j > i+1 {
			j, n = i+1, uint64(bufs[i].Len) // the run crosses a RAM region: take one buffer
			p, err = mem.Slice(run, n)
		}
		if err != nil {
			return out, err
		}
		if n > 0 {
			out = append(out, p)
		}
		i = j
	}
	return out, nil
}

// advance drops the first n bytes of iov.
func advance(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && n >= len(iov[0]) {
		n -= len(iov[0])
		iov = iov[1:]
	}
	if n > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}

// writeID answers GET_ID: the serial, NUL-padded to 20 bytes, truncated to
// the buffer the driver gave.
func (d *Device) writeID(mem *memory.RAM, data []virtio.Buffer) error {
	var id [idBytes]byte
	copy(id[:], d.opts.Serial)
	n := min(length(data), idBytes)
	_, err := virtio.NewWriter(mem, data).Write(id[:n])
	return err
}

// discard punches holes; a host that cannot is allowed to ignore discard
// (§5.2.6.2: the data read afterwards is unspecified).
func (d *Device) discard(ranges []byteRange) error {
	for _, r := range ranges {
		err := d.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, r)
		if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
	}
	return nil
}

// writeZeroes zeroes each range: ZERO_RANGE where the filesystem has it,
// else a hole if the driver allows unmapping, else written zeros.
func (d *Device) writeZeroes(ranges []byteRange) error {
	for _, r := range ranges {
		err := d.fallocate(unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, r)
		if err != nil && r.unmap {
			err = d.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, r)
		}
		if err != nil {
			err = d.writeZeroBytes(r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Device) fallocate(mode uint32, r byteRange) error {
	if r.len == 0 {
		return nil
	}
	return control(d.file, func(fd int) error { return unix.Fallocate(fd, mode, r.off, r.len) })
}

func (d *Device) writeZeroBytes(r byteRange) error {
	zeros := make([]byte, min(r.len, 1<<20))
	for off, end := r.off, r.off+r.len; off < end; {
		n := min(int64(len(zeros)), end-off)
		if _, err := d.file.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}
