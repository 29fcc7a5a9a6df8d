package lzo

import (
	"errors"
	"fmt"
)

// ErrCorrupt: the LZO1X data breaks a rule of the format: a length or
// back-reference outside the block, or input that ends before its end
// marker.
var ErrCorrupt = errors.New("corrupt LZO1X data")

// decode1X decompresses src, one block of LZO1X data (LZO1X-1 and
// LZO1X-999 write the same format), into dst, which it must fill exactly
// before its end marker. A block stands alone: no match reaches back
// before dst's start.
func decode1X(dst, src []byte) error {
	d := decoder1X{dst: dst, src: src}
	if err := d.run(); err != nil {
		return fmt.Errorf("%w: %v (at input byte %d, output byte %d)", ErrCorrupt, err, d.in, d.out)
	}
	return nil
}

// decoder1X is a position in a block's input and output.
type decoder1X struct {
	dst, src []byte
	in, out  int
}

// run decodes instructions to the end marker. What an opcode below 16
// means depends on the literals the one before it copied (state): none,
// a literal run follows; 1 to 3, a 2-byte match within 1 KiB; 4 or
// more, a 3-byte match 2 to 3 KiB back.
func (d *decoder1X) run() error {
	state, err := d.first()
	for err == nil {
		var op byte
		if op, err = d.byte(); err != nil {
			return err
		}
		if op < 16 && state == 0 {
			state, err = 4, d.literalRun(op)
			continue
		}
		var end bool
		if end, state, err = d.instruction(op, state); end && err == nil {
			return d.end()
		}
	}
	return err
}

// literalRun copies a run of 4 or more literals.
func (d *decoder1X) literalRun(op byte) error {
	n, err := d.length(op, 15)
	if err != nil {
		return err
	}
	return d.literals(n + 3)
}

// first reads the first byte, which above 17 is a literal run of that
// less 17; else the byte is an instruction, read again by run.
func (d *decoder1X) first() (state int, err error) {
	b, err := d.byte()
	if err != nil {
		return 0, err
	}
	if b <= 17 {
		d.in--
		return 0, nil
	}
	n := int(b) - 17
	return min(n, 4), d.literals(n)
}

// instruction copies the match op starts, then the literals its last two
// bits ask for, and returns the state that leaves; end is the end marker.
func (d *decoder1X) instruction(op byte, state int) (end bool, next int, err error) {
	var n, dist int
	var lo byte
	switch {
	case op >= 64: // 3 to 8 bytes within 2 KiB
		h, err := d.byte()
		if err != nil {
			return false, 0, err
		}
		n, dist, lo = int(op>>5)+1, int(h)<<3+int(op>>2&7)+1, op
	case op >= 32: // within 16 KiB
		if n, err = d.length(op&31, 31); err != nil {
			return false, 0, err
		}
		if dist, lo, err = d.distance16(); err != nil {
			return false, 0, err
		}
		n, dist = n+2, dist+1
	case op >= 16: // 16 to 48 KiB back; none back is the end marker
		if n, err = d.length(op&7, 7); err != nil {
			return false, 0, err
		}
		if dist, lo, err = d.distance16(); err != nil {
			return false, 0, err
		}
		if int(op&8)<<11+dist == 0 {
			return true, 0, d.endMarker(op, n, lo)
		}
		n, dist = n+2, dist+int(op&8)<<11+16384
	default: // after literals: 2 bytes within 1 KiB, or 3 bytes 2 to 3 KiB back
		h, err := d.byte()
		if err != nil {
			return false, 0, err
		}
		n, dist, lo = 2, int(h)<<2+int(op>>2)+1, op
		if state == 4 {
			n, dist = 3, dist+2048
		}
	}
	if err := d.match(dist, n); err != nil {
		return false, 0, err
	}
	next = int(lo & 3)
	return false, next, d.literals(next)
}

// length is a length field: its bits, or when they are zero, base plus
// 255 for each zero byte that follows and the nonzero byte that ends them.
func (d *decoder1X) length(bits byte, base int) (int, error) {
	if bits != 0 {
		return int(bits), nil
	}
	n := base
	for {
		b, err := d.byte()
		if err != nil {
			return 0, err
		}
		if b != 0 {
			return n + int(b), nil
		}
		n += 255
	}
}

// distance16 reads a little-endian 16-bit field: a distance in its upper
// 14 bits, the count of literals that follow the match in its lower 2.
func (d *decoder1X) distance16() (dist int, lo byte, err error) {
	if len(d.src)-d.in < 2 {
		return 0, 0, errors.New("input ends inside a match")
	}
	lo, hi := d.src[d.in], d.src[d.in+1]
	d.in += 2
	return int(hi)<<6 | int(lo>>2), lo, nil
}

func (d *decoder1X) byte() (byte, error) {
	if d.in >= len(d.src) {
		return 0, errors.New("input ends before the end marker")
	}
	d.in++
	return d.src[d.in-1], nil
}

// literals copies n bytes from the input.
func (d *decoder1X) literals(n int) error {
	if n > len(d.src)-d.in {
		return fmt.Errorf("a run of %d literals with %d bytes of input left", n, len(d.src)-d.in)
	}
	if n > len(d.dst)-d.out {
		return fmt.Errorf("a run of %d literals past the block's %d bytes", n, len(d.dst))
	}
	d.out += copy(d.dst[d.out:], d.src[d.in:d.in+n])
	d.in += n
	return nil
}

// match copies n bytes from dist back in the output; where they overlap
// what is copied, the copy repeats with period dist.
func (d *decoder1X) match(dist, n int) error {
	if dist > d.out {
		return fmt.Errorf("a match %d bytes back with %d bytes of output", dist, d.out)
	}
	if n > len(d.dst)-d.out {
		return fmt.Errorf("a match of %d bytes past the block's %d bytes", n, len(d.dst))
	}
	from := d.out - dist
	for end := d.out + n; d.out < end; {
		d.out += copy(d.dst[d.out:end], d.dst[from:d.out])
	}
	return nil
}

// endMarker checks the instruction that ends the data is the one LZO's
// compressors write, 11 00 00, without bits that would mean nothing.
func (d *decoder1X) endMarker(op byte, n int, lo byte) error {
	if op != 0x11 || n != 1 || lo != 0 {
		return errors.New("an end marker other than 11 00 00")
	}
	return nil
}

// end checks the end marker closes the block: every byte of input read
// and of output written.
func (d *decoder1X) end() error {
	if d.in != len(d.src) || d.out != len(d.dst) {
		return fmt.Errorf("the end marker after %d of %d input bytes and %d of %d output bytes", d.in, len(d.src), d.out, len(d.dst))
	}
	return nil
}
