package lzo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// sample is n bytes that compress, with random stretches that do not.
func sample(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	words := [][]byte{[]byte("vmlinux "), []byte("\x00\x00\x00\x00"), []byte("\xe8\x10\x20\x00\x00"), []byte("lzop ")}
	var b []byte
	for len(b) < n {
		if rng.IntN(8) == 0 {
			for range rng.IntN(64) {
				b = append(b, byte(rng.Uint32()))
			}
		} else {
			b = append(b, words[rng.IntN(len(words))]...)
		}
	}
	return b[:n]
}

// The committed files are sample(sampleSize) through lzop: sample.lzo by
// `lzop -9`, as Linux's build compresses, sample-crc32.lzo by
// `lzop -1 --crc32`; and sample-nosum.lzo, whose blocks have no checksums
// for a fuzzer to stop at, is its first 2000 bytes by
// `lzop -3 --no-checksum`.
const sampleSize = 20000

var committedArgs = map[string][]string{"sample.lzo": {"-9"}, "sample-crc32.lzo": {"-1", "--crc32"}, "sample-nosum.lzo": {"-3", "--no-checksum"}}

func committed(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lzop is in through the lzop CLI with args.
func lzop(t *testing.T, in []byte, args ...string) []byte {
	t.Helper()
	needLzop(t)
	cmd := exec.Command("lzop", append(args, "-c")...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lzop %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func needLzop(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("lzop"); err != nil {
		t.Skip("no lzop CLI (apt-get install lzop); the committed files cover the decoder")
	}
}

func decompress(lz []byte) ([]byte, error) { return read(bytes.NewReader(lz)) }

func TestDecompress(t *testing.T) {
	random := make([]byte, MaxBlock+1000)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	big := append(sample(3*MaxBlock+17), random...)
	for _, tc := range []struct {
		name string
		in   []byte
		lz   func(t *testing.T, in []byte) []byte
	}{
		{"committed -9", sample(sampleSize), func(t *testing.T, _ []byte) []byte { return committed(t, "sample.lzo") }},
		{"committed -1 --crc32", sample(sampleSize), func(t *testing.T, _ []byte) []byte { return committed(t, "sample-crc32.lzo") }},
		{"committed -3 --no-checksum", sample(2000), func(t *testing.T, _ []byte) []byte { return committed(t, "sample-nosum.lzo") }},
		{"-9", sample(sampleSize), func(t *testing.T, in []byte) []byte { return lzop(t, in, "-9") }},
		{"-7", sample(sampleSize), func(t *testing.T, in []byte) []byte { return lzop(t, in, "-7") }},
		{"-1", sample(sampleSize), func(t *testing.T, in []byte) []byte { return lzop(t, in, "-1") }},
		{"-3 --no-checksum", sample(sampleSize), func(t *testing.T, in []byte) []byte { return lzop(t, in, "-3", "--no-checksum") }},
		{"-9 --crc32", sample(sampleSize), func(t *testing.T, in []byte) []byte { return lzop(t, in, "-9", "--crc32") }},
		{"empty", nil, func(t *testing.T, in []byte) []byte { return lzop(t, in, "-9") }},
		{"one byte", []byte{7}, func(t *testing.T, in []byte) []byte { return lzop(t, in, "-9") }},
		{"stored", random, func(t *testing.T, in []byte) []byte { return lzop(t, in, "-9") }},
		{"blocks -9", big, func(t *testing.T, in []byte) []byte { return lzop(t, in, "-9") }},
		{"blocks -1 --crc32", big, func(t *testing.T, in []byte) []byte { return lzop(t, in, "-1", "--crc32") }},
		{"long runs", bytes.Repeat([]byte{0}, 2*MaxBlock+5), func(t *testing.T, in []byte) []byte { return lzop(t, in, "-9") }},
		{"checksums of the compressed data", sample(sampleSize), func(t *testing.T, _ []byte) []byte {
			return withSums(t, committed(t, "sample.lzo"), flagAdler32D|flagCRC32D|flagAdler32C|flagCRC32C)
		}},
		{"CRC-32 of the compressed data alone", sample(sampleSize), func(t *testing.T, _ []byte) []byte {
			return withSums(t, committed(t, "sample.lzo"), flagCRC32C)
		}},
		{"header CRC-32, Adler-32 of the compressed data", random, func(t *testing.T, in []byte) []byte {
			return withSums(t, lzop(t, in, "-1", "--crc32"), flagAdler32C|flagHeaderCRC)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lz := tc.lz(t, tc.in)
			got, err := decompress(lz)
			if err != nil {
				t.Fatal(err)
			}
			// A block's worth of random bytes does not compress.
			if blocks, _ := blocksOf(lz); bytes.Contains(tc.in, random) && !hasStored(blocks) {
				t.Errorf("no block of %d is stored", len(blocks))
			}
			if !bytes.Equal(got, tc.in) {
				t.Errorf("decompressed %d bytes, not the %d compressed", len(got), len(tc.in))
			}
		})
	}
}

// TestCommittedFiles: the committed files are what lzop makes of sample,
// byte for byte but the header's time stamp.
func TestCommittedFiles(t *testing.T) {
	for name, args := range committedArgs {
		in := sample(sampleSize)
		if name == "sample-nosum.lzo" {
			in = in[:2000]
		}
		got := lzop(t, in, args...)
		want := committed(t, name)
		if len(got) != len(want) || !bytes.Equal(got[headerEnd(want):], want[headerEnd(want):]) {
			t.Errorf("%s differs from what lzop %s makes now", name, strings.Join(args, " "))
		}
	}
}

func hasStored(blocks []block) bool {
	for _, b := range blocks {
		if b.packed == b.n {
			return true
		}
	}
	return false
}

// lzop's header as lzop 1.04 writes it, with no file name: magic,
// versions, method, level, flags, mode, mtime, name length, checksum.
const (
	offFlags = 9 + 2 + 2 + 2 + 1 + 1
	offName  = offFlags + 4 + 4 + 8
)

func headerEnd(lz []byte) int { return offName + 1 + int(lz[offName]) + 4 }

// block is a block of an lzop file as it lies there.
type block struct {
	n, packed uint32
	data      []byte
}

// blocksOf splits the blocks of lz, a file with no file name in its
// header, and returns what follows them.
func blocksOf(lz []byte) (blocks []block, rest []byte) {
	flags := binary.BigEndian.Uint32(lz[offFlags:])
	rest = lz[headerEnd(lz):]
	for binary.BigEndian.Uint32(rest) != 0 {
		b := block{n: binary.BigEndian.Uint32(rest), packed: binary.BigEndian.Uint32(rest[4:])}
		rest = rest[8+4*sumsIn(flags, b.packed < b.n):]
		b.data, rest = rest[:b.packed], rest[b.packed:]
		blocks = append(blocks, b)
	}
	return blocks, rest
}

// lzopSumOrder is the order lzop writes a block's checksums in, which
// TestSumOrder has lzop itself confirm.
var lzopSumOrder = []uint32{flagAdler32D, flagCRC32D, flagAdler32C, flagCRC32C}

// sumsIn counts the checksums a block states under flags.
func sumsIn(flags uint32, compressed bool) int {
	n := 0
	for _, f := range lzopSumOrder {
		if flags&f != 0 && (compressed || f&(flagAdler32C|flagCRC32C) == 0) {
			n++
		}
	}
	return n
}

// withSums is lz rewritten with the checksums flags asks for, all of them
// right.
func withSums(t *testing.T, lz []byte, flags uint32) []byte {
	t.Helper()
	plain, err := decompress(lz)
	if err != nil {
		t.Fatal(err)
	}
	old := binary.BigEndian.Uint32(lz[offFlags:])
	b := bytes.Clone(lz[:headerEnd(lz)-4])
	binary.BigEndian.PutUint32(b[offFlags:], old&^(flagAdler32D|flagCRC32D|flagHeaderCRC)|flags)
	b = binary.BigEndian.AppendUint32(b, headerSum(b[len(magic):], flags))
	blocks, rest := blocksOf(lz)
	for _, blk := range blocks {
		b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(b, blk.n), blk.packed)
		for _, f := range lzopSumOrder {
			if flags&f == 0 || blk.packed == blk.n && f&(flagAdler32C|flagCRC32C) != 0 {
				continue
			}
			of := plain[:blk.n]
			if f&(flagAdler32C|flagCRC32C) != 0 {
				of = blk.data
			}
			b = binary.BigEndian.AppendUint32(b, sum(f, of))
		}
		b = append(b, blk.data...)
		plain = plain[blk.n:]
	}
	return append(b, rest...)
}

func headerSum(b []byte, flags uint32) uint32 {
	if flags&flagHeaderCRC != 0 {
		return sum(flagCRC32D, b)
	}
	return sum(flagAdler32D, b)
}

// lzop itself tests a file with every checksum good, and reads it as this
// reader does.
func TestSumOrder(t *testing.T) {
	all := withSums(t, committed(t, "sample.lzo"), flagAdler32D|flagCRC32D|flagAdler32C|flagCRC32C)
	needLzop(t)
	cmd := exec.Command("lzop", "-dc")
	cmd.Stdin = bytes.NewReader(all)
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, sample(sampleSize)) {
		t.Errorf("lzop -d of a file with all four checksums: %d bytes, %v", len(out), err)
	}
	if got, err := decompress(all); err != nil || !bytes.Equal(got, out) {
		t.Errorf("the same file here: %d bytes, %v", len(got), err)
	}
}

// What the reader says of files that break a rule.
func TestDecompressErrors(t *testing.T) {
	lz := committed(t, "sample.lzo")
	set := func(off int, v ...byte) []byte {
		b := bytes.Clone(lz)
		copy(b[off:], v)
		return b
	}
	// rehead is lz with header bytes set and its checksum made right.
	rehead := func(off int, v ...byte) []byte {
		b := set(off, v...)
		end := headerEnd(b)
		binary.BigEndian.PutUint32(b[end-4:], headerSum(b[len(magic):end-4], binary.BigEndian.Uint32(b[offFlags:])))
		return b
	}
	block := headerEnd(lz) // the first block's sizes
	flags := binary.BigEndian.Uint32(lz[offFlags:])
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	for _, tc := range []struct {
		name string
		lz   []byte
		want string
	}{
		{"not lzop", set(1, 'X'), "not lzop's magic"},
		{"empty", nil, "cut short"},
		{"header checksum", set(offName-1, 0x55), "its checksum is"},
		{"method", rehead(15, 4), "method 4 is not supported"},
		{"method 0", rehead(15, 0), "method 0 is not supported"},
		{"old format", rehead(9, 0x08, 0x00), "older than lzop's first"},
		{"needs a newer lzop", rehead(13, 0x20, 0x00), "needs lzop version 0x2000"},
		{"filter", rehead(offFlags, be32(flags|flagFilter)...), "filtered"},
		{"extra field", rehead(offFlags, be32(flags|flagExtraField)...), "extra field"},
		{"multipart", rehead(offFlags, be32(flags|flagMultipart)...), "multi-part"},
		{"reserved flags", rehead(offFlags, be32(flags|0x4000)...), "reserved bits"},
		{"block too large", set(block, be32(MaxBlock+1)...), "262145 bytes, more than lzop's 262144"},
		{"compressed larger", set(block+4, be32(sampleSize+1)...), "20000 bytes compressed to 20001"},
		{"compressed to nothing", set(block+4, be32(0)...), "compressed to 0"},
		{"stated larger", set(block, be32(sampleSize+1)...), "the end marker after"},
		{"stated smaller", set(block, be32(sampleSize-1)...), "past the block's 19999 bytes"},
		{"data checksum", set(block+8, 0, 0, 0, 0), "the data's Adler-32 is"},
		{"no end marker", lz[:len(lz)-4], "cut short"},
	} {
		_, err := decompress(tc.lz)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := decompress(set(block+8, 0, 0, 0, 0)); !errors.Is(err, ErrChecksum) {
		t.Errorf("a wrong checksum: %v; want ErrChecksum", err)
	}
}

// A file cut anywhere is an error, never a short output.
func TestDecompressTruncated(t *testing.T) {
	for _, name := range []string{"sample.lzo", "sample-crc32.lzo"} {
		lz := committed(t, name)
		for n := range len(lz) {
			if got, err := decompress(lz[:n]); err == nil {
				t.Fatalf("%s cut to %d of %d bytes: %d bytes and no error", name, n, len(lz), len(got))
			}
		}
	}
}

// A file with a bit changed gives an error or the same output: lzop's
// checksums cover the header and each block's data, and a match may
// point at other bytes that are the same.
func TestDecompressCorrupted(t *testing.T) {
	for _, name := range []string{"sample.lzo", "sample-crc32.lzo"} {
		lz := committed(t, name)
		want := sample(sampleSize)
		for i := range lz {
			for _, flip := range []byte{0x01, 0x80} {
				bad := bytes.Clone(lz)
				bad[i] ^= flip
				if got, err := decompress(bad); err == nil && !bytes.Equal(got, want) {
					t.Errorf("%s byte %d ^ %#x: %d bytes, not those compressed, and no error", name, i, flip, len(got))
				}
			}
		}
	}
}
