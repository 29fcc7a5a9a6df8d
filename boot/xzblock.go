package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
)

// The pieces of an .xz stream below the stream itself (The .xz File
// Format 1.2.1, sections 1.2, 3.1 and 5): variable-length integers,
// block headers with their filter chain, and integrity checks.

// The filters a block may use here: Linux's xz_wrap.sh writes x86 BCJ
// then LZMA2 for x86 kernels, LZMA2 alone elsewhere (section 5.3).
const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

// xzBlockHeader is a parsed block header (section 3.1).
type xzBlockHeader struct {
	size         int64 // of the header itself, a multiple of 4 from 8 to 1024
	compressed   int64 // of the block's data, -1 when the header does not say
	uncompressed int64 // -1 when the header does not say
	dictSize     uint32
	x86          bool   // the x86 BCJ filter comes before LZMA2
	x86Start     uint32 // its start offset
}

var errVLI = errors.New("a variable-length integer is malformed")

// readVLI reads a variable-length integer (section 1.2): seven bits a
// byte, least significant first, at most nine bytes, no needless zero
// byte at the end.
func readVLI(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if b == 0 && i > 0 {
				return 0, errVLI
			}
			return v, nil
		}
	}
	return 0, errVLI
}

// parseXZBlockHeader parses a whole block header, its size byte first and
// its CRC32 last.
func parseXZBlockHeader(b []byte) (xzBlockHeader, error) {
	h := xzBlockHeader{size: int64(len(b)), compressed: -1, uncompressed: -1}
	if len(b) < 8 || len(b)%4 != 0 || (int(b[0])+1)*4 != len(b) {
		return h, fmt.Errorf("header of %d bytes", len(b))
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return h, errors.New("header CRC32 does not match")
	}
	flags := body[1]
	if flags&0x3c != 0 {
		return h, fmt.Errorf("header flags %#02x set reserved bits", flags)
	}
	r := bytes.NewReader(body[2:])
	var err error
	if flags&0x40 != 0 {
		// The data of a block is never empty (section 3.1.3).
		if h.compressed, err = readSize(r); err == nil && h.compressed == 0 {
			err = errors.New("zero")
		}
		if err != nil {
			return h, fmt.Errorf("compressed size: %w", err)
		}
	}
	if flags&0x80 != 0 {
		if h.uncompressed, err = readSize(r); err != nil {
			return h, fmt.Errorf("uncompressed size: %w", err)
		}
	}
	if err := h.readFilters(r, int(flags&3)+1); err != nil {
		return h, err
	}
	for r.Len() > 0 {
		if b, _ := r.ReadByte(); b != 0 {
			return h, errors.New("header padding is not zero")
		}
	}
	return h, nil
}

// readSize reads a size, which must fit an int64.
func readSize(r io.ByteReader) (int64, error) {
	v, err := readVLI(r)
	if err == nil && v > 1<<62 {
		err = fmt.Errorf("size %d", v)
	}
	return int64(v), err
}

// readFilters reads the filter chain: x86 BCJ then LZMA2, or LZMA2 alone.
func (h *xzBlockHeader) readFilters(r *bytes.Reader, n int) error {
	for i := 0; i < n; i++ {
		id, err := readVLI(r)
		if err != nil {
			return fmt.Errorf("filter %d: %w", i, err)
		}
		size, err := readVLI(r)
		if err != nil || size > uint64(r.Len()) {
			return fmt.Errorf("filter %d: properties size: %v", i, err)
		}
		props := make([]byte, size)
		r.Read(props)
		last := i == n-1
		switch {
		case id == xzFilterX86 && !last && i == 0:
			err = h.x86Props(props)
		case id == xzFilterLZMA2 && last:
			err = h.lzma2Props(props)
		default:
			return fmt.Errorf("filter chain: filter %#x as filter %d of %d is not supported here (x86 BCJ then LZMA2 is, as Linux's xz_wrap.sh writes)", id, i+1, n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *xzBlockHeader) x86Props(p []byte) error {
	h.x86 = true
	switch len(p) {
	case 0:
	case 4:
		h.x86Start = binary.LittleEndian.Uint32(p)
	default:
		return fmt.Errorf("x86 filter properties of %d bytes", len(p))
	}
	return nil
}

// lzma2Props reads the dictionary size (section 5.3.1).
func (h *xzBlockHeader) lzma2Props(p []byte) error {
	if len(p) != 1 || p[0] > 40 {
		return fmt.Errorf("LZMA2 properties % x", p)
	}
	if p[0] == 40 {
		h.dictSize = 0xffffffff
	} else {
		h.dictSize = (2 | uint32(p[0])&1) << (p[0]/2 + 11)
	}
	return nil
}

// xzCheck is a stream's integrity check (section 3.4); nil for none.
func xzCheck(id byte) (hash.Hash, error) {
	switch id {
	case 0x00:
		return nil, nil
	case 0x01:
		return crc32.NewIEEE(), nil
	case 0x04:
		return crc64.New(crc64.MakeTable(crc64.ECMA)), nil
	case 0x0a:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("check type %#x is not supported here (none, CRC32, CRC64 and SHA-256 are)", id)
}

// checkSum is h's value as the stream stores it: CRCs little-endian.
func checkSum(h hash.Hash) []byte {
	switch h := h.(type) {
	case nil:
		return nil
	case hash.Hash32:
		return binary.LittleEndian.AppendUint32(nil, h.Sum32())
	case hash.Hash64:
		return binary.LittleEndian.AppendUint64(nil, h.Sum64())
	}
	return h.Sum(nil)
}
