// Package pattern is the deterministic byte stream that the guest's checks
// write to disks and send over TCP and that the host's tests regenerate to
// verify them. It depends on the standard library only, so both sides
// import it.
//
// The stream for a seed s is SplitMix64 (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", OOPSLA 2014; Vigna's
// splitmix64.c) seeded with s, each 64-bit output written little-endian:
//
//	word(s, k) = mix(s + (k+1)·0x9E3779B97F4A7C15)      (mod 2⁶⁴)
//	mix(z):  z ^= z>>30; z *= 0xBF58476D1CE4E5B9
//	         z ^= z>>27; z *= 0x94D049BB133111EB
//	         z ^= z>>31
//	byte i = byte i%8 (little-endian) of word(s, i/8)
//
// For seed 0 the stream starts with the words 0xE220A8397B1DCDAF,
// 0x6E789E6AA1B965F4. Any byte can be computed without the ones before it,
// so a test can check a file at any offset, and it costs a few
// instructions a word, which matters in a nested-virtualisation sandbox
// where the guest runs 20–50× slower than hardware.
package pattern

import (
	"crypto/sha256"
	"encoding/binary"
)

const golden = 0x9E3779B97F4A7C15

// Word is the k-th 64-bit word of the stream for seed.
func Word(seed, k uint64) uint64 {
	z := seed + (k+1)*golden
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// Fill writes the stream's bytes [offset, offset+len(p)) into p.
func Fill(p []byte, seed, offset uint64) {
	var w [8]byte
	for len(p) > 0 {
		k, skip := offset/8, offset%8
		if skip == 0 && len(p) >= 8 {
			binary.LittleEndian.PutUint64(p, Word(seed, k))
			p, offset = p[8:], offset+8
			continue
		}
		binary.LittleEndian.PutUint64(w[:], Word(seed, k))
		n := copy(p, w[skip:])
		p, offset = p[n:], offset+uint64(n)
	}
}

// Reader is the endless stream for one seed as an io.Reader.
type Reader struct {
	seed, offset uint64
}

// NewReader returns the stream for seed from its first byte.
func NewReader(seed uint64) *Reader { return &Reader{seed: seed} }

// Read fills p with the next bytes of the stream; it never fails.
func (r *Reader) Read(p []byte) (int, error) {
	Fill(p, r.seed, r.offset)
	r.offset += uint64(len(p))
	return len(p), nil
}

// SHA256 is the digest of the stream's first n bytes.
func SHA256(seed, n uint64) [sha256.Size]byte {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := uint64(0); off < n; {
		chunk := buf[:min(uint64(len(buf)), n-off)]
		Fill(chunk, seed, off)
		h.Write(chunk) //nolint:errcheck // hash.Hash.Write never fails
		off += uint64(len(chunk))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
