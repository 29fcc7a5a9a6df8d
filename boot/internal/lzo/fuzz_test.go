package lzo

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzLZO feeds the lzop reader arbitrary files and the LZO1X decoder
// arbitrary blocks. Each must end, with an error or not, without a panic;
// the reader must give no more than the blocks' stated sizes and the same
// bytes however its input is split.
func FuzzLZO(f *testing.F) {
	for name := range committedArgs {
		lz := committed(f, name)
		f.Add(lz, uint16(0))
		f.Add(lz[:headerEnd(lz)+100], uint16(0))
		blocks, _ := blocksOf(lz)
		f.Add(blocks[0].data, uint16(blocks[0].n))
		f.Add(blocks[0].data[:len(blocks[0].data)/2], uint16(blocks[0].n))
	}
	f.Add(cat([]byte{17 + 1, 'a', 0x00, 0x00}, end), uint16(3))
	f.Add(cat(literalRun(make([]byte, 16390)), []byte{0x11, 1 << 2, 0x00}, end), uint16(16393))
	f.Fuzz(func(t *testing.T, in []byte, size uint16) {
		whole, errWhole := read(bytes.NewReader(in))
		// A block states its size, at most MaxBlock, in 8 bytes or more.
		if len(whole) > len(in)/8*MaxBlock {
			t.Fatalf("%d bytes out of a %d-byte file", len(whole), len(in))
		}
		bytewise, errBytewise := read(iotest.OneByteReader(bytes.NewReader(in)))
		if !bytes.Equal(whole, bytewise) || (errWhole == nil) != (errBytewise == nil) {
			t.Fatalf("whole: %d bytes, %v; byte by byte: %d bytes, %v", len(whole), errWhole, len(bytewise), errBytewise)
		}
		// The block decoder, with an output of size bytes to fill.
		if err := decode1X(make([]byte, size), in); err == nil && len(in) < len(end) {
			t.Fatalf("decoded %d bytes from %d, too few for an end marker", size, len(in))
		}
	})
}

func read(r io.Reader) ([]byte, error) {
	z, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}
