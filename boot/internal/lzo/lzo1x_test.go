package lzo

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// end is LZO1X's end marker: a far match that reaches back no distance.
var end = []byte{0x11, 0x00, 0x00}

// Blocks written instruction by instruction decode as the format says.
func TestDecode1X(t *testing.T) {
	long := make([]byte, 15+8*255+5+3) // bytes that differ, so that a distance off by one shows
	for i := range long {
		long[i] = byte(i % 251)
	}
	far := append([]byte("far"), make([]byte, 16382)...)
	for _, tc := range []struct {
		name     string
		src      []byte
		want     string
		dstExtra int
	}{
		{"nothing", end, "", 0},
		{"one literal", cat([]byte{17 + 1, 'a'}, end), "a", 0},
		// After 1 to 3 literals, an opcode below 16 is a 2-byte match.
		{"overlapping match", cat([]byte{17 + 1, 'a', 0x00, 0x00}, end), "aaa", 0},
		// A literal run whose length is 18 + 255 a zero byte + the last.
		{"long literal run", cat(literalRun(long), end), string(long), 0},
		// After 4 or more literals, a 3-byte match 2049 bytes back or more.
		{"match after a run", cat(literalRun(long), []byte{0x00, 0x00}, end), string(long) + string(long[len(long)-2049:][:3]), 0},
		// 64 to 255: 3 to 8 bytes within 2 KiB, here 8 from 2 back with
		// 1 literal after.
		{"near match", cat([]byte{17 + 2, 'a', 'b', 0b111_001_01, 0x00, 'c'}, end), "ab" + "abababab" + "c", 0},
		// 32 to 63: a length and a 16-bit distance field, here 5 from 2 back.
		{"match within 16 KiB", cat([]byte{17 + 2, 'a', 'b', 0x20 | 3, 1 << 2, 0x00}, end), "ab" + "ababa", 0},
		// 16 to 31: 16 KiB back or more, here 3 bytes from 16385 back.
		{"far match", cat(literalRun(far), []byte{0x11, 1 << 2, 0x00}, end), string(far) + "far", 0},
	} {
		dst := make([]byte, len(tc.want)+tc.dstExtra)
		if err := decode1X(dst, tc.src); err != nil || string(dst) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, dst, err, tc.want)
		}
	}
}

// Every length and distance is checked against the block: each error is
// ErrCorrupt, never a panic or a write outside dst.
func TestDecode1XErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  []byte
		dst  int
		want string
	}{
		{"a match before the start", cat([]byte{17 + 1, 'a', 0x04, 0x00}, end), 3, "a match 2 bytes back with 1 bytes of output"},
		{"a far match before the start", cat([]byte{17 + 1, 'a', 0x11, 0x04, 0x00}, end), 5, "a match 16385 bytes back"},
		{"a match past the block", cat([]byte{17 + 1, 'a', 0x00, 0x00}, end), 2, "a match of 2 bytes past the block's 2 bytes"},
		{"literals past the block", cat([]byte{17 + 4, 'a', 'b', 'c', 'd'}, end), 3, "a run of 4 literals past the block's 3 bytes"},
		{"literals past the input", []byte{17 + 4, 'a', 'b'}, 4, "a run of 4 literals with 2 bytes of input left"},
		{"input ends in a match", []byte{17 + 1, 'a', 0x00}, 3, "input ends before the end marker"},
		{"input ends in a distance", []byte{17 + 1, 'a', 0x21, 0x00}, 3, "input ends inside a match"},
		{"input ends in a length", []byte{0x00, 0x00, 0x00}, 300, "input ends before the end marker"},
		{"no end marker", []byte{17 + 1, 'a'}, 1, "input ends before the end marker"},
		{"the end marker early", cat([]byte{17 + 1, 'a'}, end), 2, "the end marker after 5 of 5 input bytes and 1 of 2 output bytes"},
		{"input after the end marker", cat([]byte{17 + 1, 'a'}, end, []byte{0}), 1, "the end marker after 5 of 6 input bytes"},
		{"an end marker with a length", []byte{17 + 1, 'a', 0x12, 0x00, 0x00}, 1, "an end marker other than 11 00 00"},
		{"an end marker with literals", []byte{17 + 1, 'a', 0x11, 0x01, 0x00}, 1, "an end marker other than 11 00 00"},
		{"a huge literal run", cat([]byte{0x00}, bytes.Repeat([]byte{0}, 1000), []byte{1}), 10, "a run of 255019 literals"},
	} {
		dst := make([]byte, tc.dst)
		err := decode1X(dst, tc.src)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrCorrupt saying %q", tc.name, err, tc.want)
		}
	}
}

// literalRun is a run of literals, 19 or more, as the first instruction.
func literalRun(lits []byte) []byte {
	n := len(lits) - 3 - 15
	zeros := (n - 1) / 255
	return cat([]byte{0x00}, make([]byte, zeros), []byte{byte(n - 255*zeros)}, lits)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
