package lzo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
)

// nextBlock reads and decompresses the next block, or returns io.EOF at
// the end marker, a block of no bytes. A block is its uncompressed and
// compressed sizes (big-endian), the checksums its flags ask for, then
// its data, stored as it is when compressing did not make it smaller.
func (z *Reader) nextBlock() ([]byte, error) {
	var sizes [8]byte
	if _, err := io.ReadFull(z.r, sizes[:4]); err != nil {
		return nil, cutShort(err)
	}
	n := binary.BigEndian.Uint32(sizes[:4])
	if n == 0 {
		return nil, io.EOF
	}
	if n > MaxBlock {
		return nil, fmt.Errorf("%d bytes, more than lzop's %d", n, MaxBlock)
	}
	if _, err := io.ReadFull(z.r, sizes[4:]); err != nil {
		return nil, cutShort(err)
	}
	packed := binary.BigEndian.Uint32(sizes[4:])
	if packed == 0 || packed > n {
		return nil, fmt.Errorf("%d bytes compressed to %d", n, packed)
	}
	sums, err := z.readSums(packed < n)
	if err != nil {
		return nil, err
	}
	z.packed = grow(z.packed, int(packed))
	if _, err := io.ReadFull(z.r, z.packed); err != nil {
		return nil, cutShort(err)
	}
	if packed == n {
		return z.packed, sums.check(z.packed, nil)
	}
	z.buf = grow(z.buf, int(n))
	if err := decode1X(z.buf, z.packed); err != nil {
		return nil, err
	}
	return z.buf, sums.check(z.buf, z.packed)
}

// blockSum is a checksum a block states.
type blockSum struct {
	flag uint32
	want uint32
}

type blockSums []blockSum

// The checksums a block may state, in the order it states them; those of
// the compressed data only when its data is compressed.
var sumOrder = []uint32{flagAdler32D, flagCRC32D, flagAdler32C, flagCRC32C}

func (z *Reader) readSums(compressed bool) (blockSums, error) {
	var s blockSums
	for _, flag := range sumOrder {
		if z.flags&flag == 0 || !compressed && flag&(flagAdler32C|flagCRC32C) != 0 {
			continue
		}
		var b [4]byte
		if _, err := io.ReadFull(z.r, b[:]); err != nil {
			return nil, cutShort(err)
		}
		s = append(s, blockSum{flag, binary.BigEndian.Uint32(b[:])})
	}
	return s, nil
}

// ErrChecksum: a block's data does not match a checksum stated for it.
var ErrChecksum = errors.New("lzop checksum does not match")

// check compares the checksums with the data's and the compressed data's.
func (s blockSums) check(data, compressed []byte) error {
	for _, c := range s {
		b, what := data, "data"
		if c.flag&(flagAdler32C|flagCRC32C) != 0 {
			b, what = compressed, "compressed data"
		}
		kind := "Adler-32"
		if c.flag&(flagCRC32D|flagCRC32C) != 0 {
			kind = "CRC-32"
		}
		if got := sum(c.flag, b); got != c.want {
			return fmt.Errorf("%w: the %s's %s is %#08x, the block says %#08x", ErrChecksum, what, kind, got, c.want)
		}
	}
	return nil
}

// sum is b's checksum of the kind flag names.
func sum(flag uint32, b []byte) uint32 {
	if flag&(flagCRC32D|flagCRC32C) != 0 {
		return crc32.ChecksumIEEE(b)
	}
	return adler32.Checksum(b)
}

// grow is b resized to n bytes, reusing its array when it can.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
