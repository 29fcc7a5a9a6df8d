package boot

import (
	"encoding/binary"
	"io"
)

// bcjX86 undoes the x86 branch/call/jump filter (.xz file format 1.2.1,
// section 5.3.3, filter ID 0x04): the encoder turned the 32-bit relative
// operand of an E8 (call) or E9 (jmp) byte into an absolute address, so
// that calls to one function look alike to LZMA2; the decoder turns it
// back. An operand is converted only when its top byte is 00 or FF (a
// displacement within ±16 MiB). The filter has no synchronisation, so a
// state machine guesses whether an E8/E9 byte is an opcode: its mask
// remembers which of the last three bytes were E8/E9 bytes left alone,
// and some patterns of them veto a conversion.
type bcjX86 struct {
	pos  uint32 // the stream position of the next byte to decode, plus the filter's start offset
	mask uint32 // bit k: the byte k+1 before the next one was an E8/E9 left alone
}

// The mask's verdicts, indexed by mask: whether an E8/E9 may still be
// converted, and which operand byte (counted from the top) a conversion
// then re-checks.
var (
	bcjAllowed = [8]bool{true, true, true, false, true, false, false, false}
	bcjByte    = [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
)

// bcjNear reports whether b is the top byte of a near displacement.
func bcjNear(b byte) bool { return b == 0x00 || b == 0xff }

// decode converts buf in place and returns how many of its bytes are
// final. The rest (at most four) belong to an operand that may continue
// past buf: decode them again with the bytes that follow, or, at the end
// of the stream, leave them as they are.
func (s *bcjX86) decode(buf []byte) int {
	mask := s.mask
	last := -1 // the position of the last E8/E9 looked at; -1 lines the mask up with buf
	i := 0
	for ; i+4 < len(buf); i++ {
		if buf[i]&0xfe != 0xe8 {
			continue
		}
		if d := i - last; d > 3 {
			mask = 0
		} else {
			mask = mask << (d - 1) & 7
		}
		last = i
		if mask != 0 && (!bcjAllowed[mask] || bcjNear(buf[i+4-int(bcjByte[mask])])) || !bcjNear(buf[i+4]) {
			mask = mask<<1&7 | 1
			continue
		}
		binary.LittleEndian.PutUint32(buf[i+1:], s.operand(buf[i+1:i+5], i, mask))
		i += 4
	}
	if d := i - last; d > 3 {
		s.mask = 0
	} else {
		s.mask = mask << (d - 1) & 7
	}
	s.pos += uint32(i)
	return i
}

// operand is the relative operand of the E8/E9 at buf[i], from the
// absolute one the encoder wrote. With earlier E8/E9 bytes close by, the
// encoder converted again when its first result had a near top byte at
// the re-checked position (its own output was ambiguous); the decoder
// mirrors that. A third round cannot happen: its value there would be the
// complement of the operand's own byte, which decode checked is neither
// 00 nor FF.
func (s *bcjX86) operand(op []byte, i int, mask uint32) uint32 {
	next := s.pos + uint32(i) + 5 // the address the CPU adds a relative operand to
	v := binary.LittleEndian.Uint32(op) - next
	if mask != 0 {
		shift := 32 - 8*bcjByte[mask] // the bits at and below the re-checked byte
		if bcjNear(byte(v >> (shift - 8))) {
			v = (v ^ (1<<shift - 1)) - next
		}
	}
	// Sign-extend from bit 24: the encoder kept the top byte 00 or FF.
	v &= 0x01ffffff
	if v&0x01000000 != 0 {
		v |= 0xff000000
	}
	return v
}

// bcjReader decodes the x86 filter over r's bytes.
type bcjReader struct {
	r     io.Reader
	f     bcjX86
	buf   []byte
	start int // buf[start:final] is decoded and not yet read
	final int
	end   int // buf[final:end] awaits the bytes after it
	err   error
}

func newBCJReader(r io.Reader, startOffset uint32) *bcjReader {
	return &bcjReader{r: r, f: bcjX86{pos: startOffset}, buf: make([]byte, 64<<10)}
}

func (b *bcjReader) Read(p []byte) (int, error) {
	for b.start == b.final {
		if b.err != nil {
			return 0, b.err
		}
		b.fill()
	}
	n := copy(p, b.buf[b.start:b.final])
	b.start += n
	return n, nil
}

// fill reads into buf after the bytes still pending and decodes what it can.
func (b *bcjReader) fill() {
	b.end = copy(b.buf, b.buf[b.final:b.end])
	b.start, b.final = 0, 0
	n, err := io.ReadAtLeast(b.r, b.buf[b.end:], 1)
	b.end += n
	b.final = b.f.decode(b.buf[:b.end])
	b.err = err
	if err == io.EOF {
		b.final = b.end // the stream's last bytes stay as they are
	}
}
