package boot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xzReader decodes the first stream of an .xz file (The .xz File Format
// 1.2.1, section 2): its header, blocks, index and footer, with every
// size the stream states and every check verified. LZMA2 is
// github.com/ulikunitz/xz/lzma's; its own xz reader takes no filter but
// LZMA2, and Linux compresses x86 kernels with the x86 BCJ filter first.
// Nothing after the footer is read: Linux's decompressor stops there too,
// and its build appends the vmlinux's size.
type xzReader struct {
	in     xzInput
	flags  []byte // the stream flags, which the footer repeats
	maxOut int64  // the most output wanted, which bounds the dictionaries
	out    int64  // the output of the blocks decoded so far
	dicts  int64  // what their dictionaries took beyond lzma.MinDictCap
	block  *xzBlock
	index  []xzRecord // what the blocks decoded so far were, for the index to match
	err    error
}

// xzBlock is the block being decoded.
type xzBlock struct {
	h     xzBlockHeader
	start int64 // the input offset of its data
	r     io.Reader
	check hash.Hash
	n     int64 // bytes decoded so far
}

// xzRecord is a block as the index lists it (section 4.3).
type xzRecord struct{ unpadded, uncompressed int64 }

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// newXZReader reads the stream header from r.
func newXZReader(r io.Reader, maxOut int64) (*xzReader, error) {
	z := &xzReader{in: xzInput{r: bufio.NewReader(r)}, maxOut: maxOut}
	h, err := z.in.next(12)
	if err != nil {
		return nil, fmt.Errorf("stream header: %w", err)
	}
	if !bytes.Equal(h[:6], xzMagic) {
		return nil, fmt.Errorf("stream header starts % x, not the xz magic", h[:6])
	}
	z.flags = h[6:8]
	if crc32.ChecksumIEEE(z.flags) != binary.LittleEndian.Uint32(h[8:]) {
		return nil, errors.New("stream header CRC32 does not match")
	}
	if z.flags[0] != 0 || z.flags[1]&0xf0 != 0 {
		return nil, fmt.Errorf("stream flags % x set reserved bits", z.flags)
	}
	if _, err := xzCheck(z.flags[1]); err != nil {
		return nil, err
	}
	return z, nil
}

func (z *xzReader) Read(p []byte) (int, error) {
	for z.err == nil {
		if z.block == nil {
			z.err = z.nextBlock()
			continue
		}
		n, err := z.block.read(p)
		if err == io.EOF {
			err = z.endBlock()
		} else if err != nil {
			err = fmt.Errorf("block %d: %w", len(z.index), err)
		}
		z.err = err
		if n > 0 {
			return n, nil
		}
	}
	return 0, z.err
}

// nextBlock starts the next block, or reads the index and footer after
// the last one and returns io.EOF.
func (z *xzReader) nextBlock() error {
	size, err := z.in.ReadByte()
	if err != nil {
		return fmt.Errorf("after block %d: %w", len(z.index), noEOF(err))
	}
	if size == 0 { // the index indicator
		return z.readIndex()
	}
	hb := make([]byte, (int(size)+1)*4)
	hb[0] = size
	if _, err := io.ReadFull(&z.in, hb[1:]); err != nil {
		return fmt.Errorf("block %d header: %w", len(z.index), noEOF(err))
	}
	h, err := parseXZBlockHeader(hb)
	if err != nil {
		return fmt.Errorf("block %d: %w", len(z.index), err)
	}
	b := &xzBlock{h: h, start: z.in.n}
	b.check, _ = xzCheck(z.flags[1])
	var data io.Reader = &z.in
	if h.compressed >= 0 {
		data = io.LimitReader(&z.in, h.compressed)
	}
	dictCap, err := z.dictCap(h)
	if err != nil {
		return fmt.Errorf("block %d: %w", len(z.index), err)
	}
	lz, err := lzma.Reader2Config{DictCap: dictCap}.NewReader2(data)
	if err != nil {
		return fmt.Errorf("block %d: %w", len(z.index), err)
	}
	b.r = lz
	if h.x86 {
		b.r = newBCJReader(lz, h.x86Start)
	}
	z.block = b
	return nil
}

// dictCap sizes a block's LZMA2 dictionary, which the decoder allocates
// whole before it decodes a byte. No match reaches back past the start of
// its block, so the dictionary need be no larger than what the block can
// still give: the output still wanted, and the block's uncompressed size
// when its header states it. The dictionaries of all blocks together are
// bounded too, at twice the output wanted: else a stream of empty blocks
// that each ask for a 4 GiB dictionary would have the host allocate and
// clear the whole output's size again for every 16 bytes of input.
func (z *xzReader) dictCap(h xzBlockHeader) (int, error) {
	c := min(int64(h.dictSize), z.maxOut-z.out)
	if h.uncompressed >= 0 {
		c = min(c, h.uncompressed)
	}
	c = max(c, lzma.MinDictCap)
	if z.dicts += c - lzma.MinDictCap; z.dicts > 2*z.maxOut {
		return 0, fmt.Errorf("its LZMA2 dictionary brings the stream's to %d bytes, more than twice the %d bytes of output wanted: recompress it in fewer blocks, as Linux's build does", z.dicts, z.maxOut)
	}
	return int(c), nil
}

func (b *xzBlock) read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.h.uncompressed >= 0 && b.n > b.h.uncompressed {
		return 0, fmt.Errorf("decodes to more than the %d bytes its header says", b.h.uncompressed)
	}
	if b.check != nil {
		b.check.Write(p[:n])
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("LZMA2 data: %w", noEOF(err))
	}
	return n, err
}

// endBlock checks the block's sizes, padding and check (section 3.3).
func (z *xzReader) endBlock() error {
	b := z.block
	z.block = nil
	compressed := z.in.n - b.start
	if b.h.compressed >= 0 && compressed != b.h.compressed {
		return fmt.Errorf("block %d: %d bytes of data, its header says %d", len(z.index), compressed, b.h.compressed)
	}
	if b.h.uncompressed >= 0 && b.n != b.h.uncompressed {
		return fmt.Errorf("block %d: decodes to %d bytes, its header says %d", len(z.index), b.n, b.h.uncompressed)
	}
	sum := checkSum(b.check)
	tail, err := z.in.next(int(-compressed&3) + len(sum))
	if err != nil {
		return fmt.Errorf("block %d padding and check: %w", len(z.index), err)
	}
	pad := len(tail) - len(sum)
	if !bytes.Equal(tail[:pad], make([]byte, pad)) {
		return fmt.Errorf("block %d padding is not zero", len(z.index))
	}
	if !bytes.Equal(tail[pad:], sum) {
		return fmt.Errorf("block %d: its check is % x, its data's % x", len(z.index), tail[pad:], sum)
	}
	z.index = append(z.index, xzRecord{b.h.size + compressed + int64(len(sum)), b.n})
	z.out += b.n
	return nil
}

// readIndex reads the index, whose indicator byte is read, checks it
// lists the blocks decoded, then reads the footer (sections 4 and 2.1.2).
func (z *xzReader) readIndex() error {
	start := z.in.n - 1
	crc := crc32.NewIEEE()
	crc.Write([]byte{0})
	r := hashingReader{&z.in, crc}
	if err := z.readRecords(r); err != nil {
		return fmt.Errorf("index: %w", noEOF(err))
	}
	for (z.in.n-start)%4 != 0 {
		b, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("index padding: %w", noEOF(err))
		}
		if b != 0 {
			return errors.New("index padding is not zero")
		}
	}
	sum, err := z.in.next(4)
	if err != nil {
		return fmt.Errorf("index CRC32: %w", err)
	}
	if binary.LittleEndian.Uint32(sum) != crc.Sum32() {
		return errors.New("index CRC32 does not match")
	}
	return z.readFooter(z.in.n - start)
}

func (z *xzReader) readRecords(r io.ByteReader) error {
	n, err := readVLI(r)
	if err != nil {
		return err
	}
	if n != uint64(len(z.index)) {
		return fmt.Errorf("lists %d blocks, the stream has %d", n, len(z.index))
	}
	for i, want := range z.index {
		var got [2]uint64
		for j := range got {
			if got[j], err = readVLI(r); err != nil {
				return err
			}
		}
		if got != [2]uint64{uint64(want.unpadded), uint64(want.uncompressed)} {
			return fmt.Errorf("block %d: lists %d bytes unpadded and %d uncompressed, the block has %d and %d", i, got[0], got[1], want.unpadded, want.uncompressed)
		}
	}
	return nil
}

// readFooter reads the stream footer and returns io.EOF if it matches.
func (z *xzReader) readFooter(indexSize int64) error {
	f, err := z.in.next(12)
	if err != nil {
		return fmt.Errorf("stream footer: %w", err)
	}
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f) {
		return errors.New("stream footer CRC32 does not match")
	}
	if back := (int64(binary.LittleEndian.Uint32(f[4:])) + 1) * 4; back != indexSize {
		return fmt.Errorf("stream footer says the index has %d bytes, it has %d", back, indexSize)
	}
	if !bytes.Equal(f[8:10], z.flags) || string(f[10:]) != "YZ" {
		return fmt.Errorf("stream footer ends % x, not the header's flags % x and YZ", f[8:], z.flags)
	}
	return io.EOF
}

// noEOF turns an end of input inside the stream into an error that
// says so.
func noEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("the stream is cut short: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// xzInput counts the bytes read from the compressed stream.
type xzInput struct {
	r *bufio.Reader
	n int64
}

func (in *xzInput) Read(p []byte) (int, error) {
	n, err := in.r.Read(p)
	in.n += int64(n)
	return n, err
}

func (in *xzInput) ReadByte() (byte, error) {
	b, err := in.r.ReadByte()
	if err == nil {
		in.n++
	}
	return b, err
}

// next reads the next n bytes.
func (in *xzInput) next(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(in, b); err != nil {
		return nil, noEOF(err)
	}
	return b, nil
}

// hashingReader hashes the bytes it reads.
type hashingReader struct {
	r io.ByteReader
	h hash.Hash
}

func (r hashingReader) ReadByte() (byte, error) {
	b, err := r.r.ReadByte()
	if err == nil {
		r.h.Write([]byte{b})
	}
	return b, err
}
