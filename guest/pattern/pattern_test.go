package pattern

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"
)

// The published SplitMix64 outputs for seed 0 (splitmix64.c).
func TestWordsMatchSplitMix64(t *testing.T) {
	for k, want := range []uint64{0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC} {
		if got := Word(0, uint64(k)); got != want {
			t.Errorf("Word(0, %d) = %#x, want %#x", k, got, want)
		}
	}
}

func TestFillAtAnyOffsetAgreesWithTheWholeStream(t *testing.T) {
	const seed = 42
	whole := make([]byte, 4096)
	for k := range len(whole) / 8 {
		binary.LittleEndian.PutUint64(whole[8*k:], Word(seed, uint64(k)))
	}
	for _, tc := range []struct{ off, n int }{{0, 4096}, {1, 7}, {3, 100}, {8, 8}, {13, 1}, {4000, 96}, {5, 0}} {
		got := make([]byte, tc.n)
		Fill(got, seed, uint64(tc.off))
		if !bytes.Equal(got, whole[tc.off:tc.off+tc.n]) {
			t.Errorf("Fill(off %d, len %d) disagrees with the stream", tc.off, tc.n)
		}
	}
	var r bytes.Buffer
	if _, err := io.CopyN(&r, NewReader(seed), 4096); err != nil || !bytes.Equal(r.Bytes(), whole) {
		t.Errorf("Reader disagrees with the stream (err %v)", err)
	}
}

func TestSHA256IsTheDigestOfTheStream(t *testing.T) {
	const n = 3<<20 + 5
	b := make([]byte, n)
	Fill(b, 7, 0)
	if got, want := SHA256(7, n), sha256.Sum256(b); got != want {
		t.Errorf("SHA256(7, %d) = %x, want %x", n, got, want)
	}
	if SHA256(7, n) == SHA256(8, n) {
		t.Error("seeds 7 and 8 give the same stream")
	}
}
