package virtio

import (
	"fmt"
	"io"
	"math"

	"github.com/govmm/govmm/memory"
)

// cursor walks a list of buffers in order, handing out host slices of guest
// memory for one copy at a time.
type cursor struct {
	mem       *memory.RAM
	bufs      []Buffer
	off       uint32 // into bufs[0]
	remaining uint64
}

func newCursor(mem *memory.RAM, bufs []Buffer) cursor {
	return cursor{mem: mem, bufs: bufs, remaining: totalLen(bufs)}
}

// next returns up to limit bytes of the current buffer and moves past them.
// It returns an empty slice only when every buffer is used up or limit is 0.
func (c *cursor) next(limit uint64) ([]byte, error) {
	for len(c.bufs) > 0 && c.off == c.bufs[0].Len {
		c.bufs, c.off = c.bufs[1:], 0
	}
	if len(c.bufs) == 0 || limit == 0 {
		return nil, nil
	}
	b := c.bufs[0]
	n := min(limit, uint64(b.Len-c.off))
	s, err := c.mem.Slice(b.Addr+memory.GuestAddress(c.off), n)
	if err != nil {
		return nil, fmt.Errorf("chain buffer at %v: %w", b.Addr, err)
	}
	c.off += uint32(n)
	c.remaining -= n
	return s, nil
}

// Reader reads a chain's device-readable buffers in order.
type Reader struct{ c cursor }

// NewReader returns an io.Reader over bufs, which must have been validated
// (Chain.Readable).
func NewReader(mem *memory.RAM, bufs []Buffer) *Reader {
	return &Reader{c: newCursor(mem, bufs)}
}

// Read copies the next bytes of the buffers into p; io.EOF at the end.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) > 0 && r.c.remaining == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		s, err := r.c.next(uint64(len(p) - n))
		if err != nil || len(s) == 0 {
			return n, err
		}
		n += copy(p[n:], s)
	}
	return n, nil
}

// ReadFull fills p, as io.ReadFull does: io.EOF if no bytes were left,
// io.ErrUnexpectedEOF if fewer than len(p). Called on the Reader itself
// rather than through io.Reader, neither the Reader nor p escapes to the
// heap, so a device can parse a request without allocating.
func (r *Reader) ReadFull(p []byte) error {
	n, err := r.Read(p)
	switch {
	case n == len(p):
		return nil
	case err != nil && err != io.EOF:
		return err
	case n == 0:
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}

// Skip moves past n bytes, or fails with io.ErrUnexpectedEOF (having
// skipped everything) if fewer are left.
func (r *Reader) Skip(n uint64) error {
	if n > r.c.remaining {
		left := r.c.remaining
		r.c.bufs, r.c.remaining = nil, 0
		return fmt.Errorf("skip %d bytes of a chain with %d left: %w", n, left, io.ErrUnexpectedEOF)
	}
	for n > 0 {
		s, err := r.c.next(n)
		if err != nil {
			return err
		}
		n -= uint64(len(s))
	}
	return nil
}

// Remaining is how many bytes are left to read.
func (r *Reader) Remaining() uint64 { return r.c.remaining }

// Writer fills a chain's device-writable buffers in order.
type Writer struct {
	c       cursor
	written uint64
}

// NewWriter returns an io.Writer over bufs, which must have been validated
// (Chain.Writable).
func NewWriter(mem *memory.RAM, bufs []Buffer) *Writer {
	return &Writer{c: newCursor(mem, bufs)}
}

// Write copies p into the buffers. If p does not fit, it writes what fits and
// returns an error wrapping io.ErrShortWrite: nothing is truncated silently.
func (w *Writer) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		s, err := w.c.next(uint64(len(p) - n))
		if err != nil {
			return n, err
		}
		if len(s) == 0 {
			return n, fmt.Errorf("write %d bytes to a chain with %d left: %w", len(p), n, io.ErrShortWrite)
		}
		c := copy(s, p[n:])
		n += c
		w.written += uint64(c)
	}
	return n, nil
}

// Written is how many bytes were written, for Queue.Push (saturated at the
// largest length a used ring entry holds).
func (w *Writer) Written() uint32 { return uint32(min(w.written, math.MaxUint32)) }

// Remaining is how many bytes still fit.
func (w *Writer) Remaining() uint64 { return w.c.remaining }
