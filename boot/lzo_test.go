package boot

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// bigVmlinux is several of lzop's 256 KiB blocks: random bytes, a whole
// block of which lzop stores as they are, between stretches that compress.
func bigVmlinux() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 600<<10)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	v := append(testVmlinux(), noise...)
	return append(v, bytes.Repeat(testVmlinux(), 12)...)
}

func TestExtractLZO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vmlinux []byte
		args    []string
	}{
		{"as Linux compresses", testVmlinux(), []string{"-9"}},
		{"LZO1X-1(15)", testVmlinux(), []string{"-1"}},
		{"LZO1X-1, no checksum", testVmlinux(), []string{"-3", "--no-checksum"}},
		{"CRC-32", testVmlinux(), []string{"-9", "--crc32"}},
		{"CRC-32, LZO1X-1", testVmlinux(), []string{"-5", "--crc32"}},
		{"blocks, some stored", bigVmlinux(), []string{"-9"}},
		{"blocks, CRC-32", bigVmlinux(), []string{"-1", "--crc32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lz := compressedFrom(t, tc.vmlinux, "lzop", append(tc.args, "-c")...)
			got, err := extractSized(t, lz, nil, len(tc.vmlinux))
			wantExtracted(t, got, tc.vmlinux, err)
		})
	}
}
