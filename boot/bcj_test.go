package boot

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"testing/iotest"
)

// bcjInput is n bytes dense in what the x86 filter looks at: E8/E9
// opcodes, 00 and FF operand tops, and E8/E9 close together, so that every
// state of its mask is reached.
func bcjInput(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x42434a))
	alphabet := []byte{0xe8, 0xe9, 0x00, 0xff, 0x01, 0xfe, 0x7f, 0x80}
	b := make([]byte, n)
	for i := range b {
		if rng.IntN(3) == 0 {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
	}
	return b
}

// bcjDecode decodes enc through bcjReader, fed by r's way of splitting it.
func bcjDecode(t *testing.T, enc []byte, start uint32, split func(io.Reader) io.Reader) []byte {
	t.Helper()
	out, err := io.ReadAll(newBCJReader(split(bytes.NewReader(enc)), start))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var bcjSplits = map[string]func(io.Reader) io.Reader{
	"whole":     func(r io.Reader) io.Reader { return r },
	"one byte":  iotest.OneByteReader,
	"half":      iotest.HalfReader,
	"data+EOF":  iotest.DataErrReader,
	"odd sizes": func(r io.Reader) io.Reader { return io.MultiReader(io.LimitReader(r, 4097), io.LimitReader(r, 3), r) },
}

// testdata/bcj-x86.enc is bcjInput(17, 8192) through the xz CLI's x86
// filter: `xz --format=raw --x86 --lzma2 | xz --format=raw --lzma2 -d`.
// Seed 17 is one whose E8/E9 patterns make the decoder convert an
// operand a second time (bcjX86.operand), three times over.
func TestBCJX86Vector(t *testing.T) {
	enc, err := os.ReadFile("testdata/bcj-x86.enc")
	if err != nil {
		t.Fatal(err)
	}
	want := bcjInput(17, 8192)
	if bytes.Equal(enc, want) {
		t.Fatal("the vector is not filtered")
	}
	for name, split := range bcjSplits {
		if got := bcjDecode(t, enc, 0, split); !bytes.Equal(got, want) {
			t.Errorf("%s: decoded vector differs from bcjInput(17, 8192) first at byte %d", name, firstDiff(got, want))
		}
	}
}

// The xz CLI's x86 filter, undone here, gives back what it was given: a
// real x86-64 binary (this test's) and dense inputs, with start offsets.
func TestBCJX86RoundTrip(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz CLI (apt-get install xz-utils); TestBCJX86Vector covers a fixed vector")
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{"test binary": self[:min(len(self), 1<<20)]}
	for seed := uint64(2); seed < 6; seed++ {
		inputs["dense "+strconv.FormatUint(seed, 10)] = bcjInput(seed, 3000+int(seed))
	}
	for name, in := range inputs {
		for _, start := range []uint32{0, 1, 0x1000, 0xfffffffb} {
			enc := xzX86Filter(t, in, start)
			if got := bcjDecode(t, enc, start, iotest.HalfReader); !bytes.Equal(got, in) {
				t.Errorf("%s, start %#x: differs first at byte %d", name, start, firstDiff(got, in))
			}
		}
	}
}

// xzX86Filter is in through the xz CLI's x86 filter alone.
func xzX86Filter(t *testing.T, in []byte, start uint32) []byte {
	t.Helper()
	enc := exec.Command("xz", "--format=raw", "--x86=start="+strconv.FormatUint(uint64(start), 10), "--lzma2", "-c")
	enc.Stdin = bytes.NewReader(in)
	packed, err := enc.Output()
	if err != nil {
		t.Fatalf("xz --x86: %v", err)
	}
	dec := exec.Command("xz", "--format=raw", "--lzma2", "-d", "-c")
	dec.Stdin = bytes.NewReader(packed)
	out, err := dec.Output()
	if err != nil {
		t.Fatalf("xz --lzma2 -d: %v", err)
	}
	return out
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
