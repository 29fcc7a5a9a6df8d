// Package lzo reads the lzop file format, as Linux's build writes an
// LZO-compressed kernel (`lzop -9`), with an LZO1X decoder of its own:
// every length, distance and checksum the file states is checked before
// it is trusted.
package lzo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The lzop header's flags that change what the file holds.
const (
	flagAdler32D   = 0x1    // an Adler-32 of each block's uncompressed data
	flagAdler32C   = 0x2    // and of its compressed data
	flagExtraField = 0x40   // an extra field after the header
	flagCRC32D     = 0x100  // a CRC-32 of each block's uncompressed data
	flagCRC32C     = 0x200  // and of its compressed data
	flagMultipart  = 0x400  // one part of several
	flagFilter     = 0x800  // a filter on the data before compression
	flagHeaderCRC  = 0x1000 // the header's checksum is a CRC-32, not an Adler-32
	flagsReserved  = 0x000fc000
)

// MaxBlock is the most a block may decompress to: what lzop writes, and
// all Linux's decompressor reads (lib/decompress_unlzo.c).
const MaxBlock = 256 << 10

var magic = []byte{0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a}

// version is the lzop format this reads: lzop 1.04's. A file names the
// oldest lzop that can extract it; lzop 0.90's is the oldest format.
const (
	version    = 0x1040
	minVersion = 0x0900
)

// Reader decompresses an lzop file: its header, then its blocks to the
// end marker. Nothing after the end marker is read.
type Reader struct {
	r      io.Reader
	flags  uint32
	blocks int    // read so far
	buf    []byte // the block decompressed
	packed []byte // the block as the file holds it
	left   []byte // what of the block Read has not returned
	err    error
}

// NewReader reads and checks r's lzop header.
func NewReader(r io.Reader) (*Reader, error) {
	flags, err := readHeader(r)
	if err != nil {
		return nil, fmt.Errorf("lzop header: %w", err)
	}
	return &Reader{r: r, flags: flags}, nil
}

// readHeader reads the header to its checksum, which covers what lies
// between the magic and it, and returns its flags.
func readHeader(r io.Reader) (uint32, error) {
	h := header{r: r}
	if m := h.next(len(magic)); h.err == nil && !bytes.Equal(m, magic) {
		return 0, fmt.Errorf("starts % x, not lzop's magic", m)
	}
	h.sum = h.sum[:0] // the magic is not checksummed
	v := h.u16()
	h.u16() // the LZO library's version
	if h.err == nil && v < minVersion {
		return 0, fmt.Errorf("format version %#x, older than lzop's first", v)
	}
	if v >= 0x0940 {
		if need := h.u16(); h.err == nil && (need > version || need < minVersion) {
			return 0, fmt.Errorf("the file needs lzop version %#x to extract; this reads %#x", need, version)
		}
	}
	// lzop writes LZO1X-1 (methods 1 and 2) and LZO1X-999 (3), one format.
	if m := h.next(1); h.err == nil && (m[0] < 1 || m[0] > 3) {
		return 0, fmt.Errorf("method %d is not supported here (LZO1X's 1, 2 and 3 are)", m[0])
	}
	if v >= 0x0940 {
		h.next(1) // the compression level, which decoding does not need
	}
	flags := h.u32()
	if err := checkFlags(flags); h.err == nil && err != nil {
		return 0, err
	}
	h.next(8) // mode and mtime
	if v >= 0x0940 {
		h.next(4) // the mtime's high bits
	}
	if n := h.next(1); h.err == nil {
		h.next(int(n[0])) // the file name
	}
	covered := h.sum
	want := h.u32()
	if h.err != nil {
		return 0, h.err
	}
	kind := uint32(flagAdler32D)
	if flags&flagHeaderCRC != 0 {
		kind = flagCRC32D
	}
	if got := sum(kind, covered); got != want {
		return 0, fmt.Errorf("its checksum is %#08x, its bytes' %#08x", want, got)
	}
	return flags, nil
}

// checkFlags refuses what lzop writes only on request and Linux's
// decompressor does not read either: a filter, which it would not undo,
// an extra field and a part of a multi-part file.
func checkFlags(f uint32) error {
	switch {
	case f&flagsReserved != 0:
		return fmt.Errorf("flags %#08x set reserved bits", f)
	case f&flagFilter != 0:
		return errors.New("the data is filtered (lzop --filter), which Linux's decompressor would not undo")
	case f&flagExtraField != 0:
		return errors.New("an extra field, which lzop does not write")
	case f&flagMultipart != 0:
		return errors.New("a part of a multi-part file")
	}
	return nil
}

// header reads the header's fields, keeping the bytes its checksum
// covers; after an error, it reads nothing.
type header struct {
	r   io.Reader
	sum []byte
	err error
}

func (h *header) next(n int) []byte {
	if h.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		h.err = cutShort(err)
		return nil
	}
	h.sum = append(h.sum, b...)
	return b
}

func (h *header) u16() uint16 {
	if b := h.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (h *header) u32() uint32 {
	if b := h.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// cutShort turns an end of input inside the file into an error that
// says so.
func cutShort(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("the file is cut short: %w", io.ErrUnexpectedEOF)
	}
	return err
}

func (z *Reader) Read(p []byte) (int, error) {
	for len(z.left) == 0 && z.err == nil {
		z.left, z.err = z.nextBlock()
		if z.err != nil && z.err != io.EOF {
			z.err = fmt.Errorf("lzop block %d: %w", z.blocks, z.err)
		}
		z.blocks++
	}
	if len(z.left) == 0 {
		return 0, z.err
	}
	n := copy(p, z.left)
	z.left = z.left[n:]
	return n, nil
}
