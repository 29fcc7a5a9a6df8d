package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestExtractLZMA(t *testing.T) {
	for _, tc := range []struct {
		name string
		lz   func(t *testing.T) []byte
	}{
		{"committed", func(t *testing.T) []byte { return committed(t, "vmlinux.lzma") }},
		{"as Linux compresses", func(t *testing.T) []byte { return compressed(t, "lzma", "-9", "-c") }},
		{"fast", func(t *testing.T) []byte { return compressed(t, "lzma", "-0", "-c") }},
		// The header may state the size as well as end with a marker.
		{"size in the header", func(t *testing.T) []byte { return withLZMAHeader(t, 1<<26, uint64(len(testVmlinux()))) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := extract(t, tc.lz(t), nil)
			wantExtracted(t, got, testVmlinux(), err)
		})
	}
}

// withLZMAHeader is the committed stream with its dictionary and
// uncompressed sizes set to dict and size.
func withLZMAHeader(t testing.TB, dict uint32, size uint64) []byte {
	b := bytes.Clone(committed(t, "vmlinux.lzma"))
	binary.LittleEndian.PutUint32(b[1:], dict)
	binary.LittleEndian.PutUint64(b[5:], size)
	return b
}

// A header size other than the trailer's is refused; the right one is
// read as the end marker is.
func TestLZMAHeaderSize(t *testing.T) {
	n := uint64(len(testVmlinux()))
	for _, tc := range []struct {
		size uint64
		want string
	}{{n + 1, "its header says it holds 24005 bytes, the trailer 24004"}, {n - 1, "says it holds 24003"}, {1 << 62, "says it holds"}} {
		_, err := extract(t, withLZMAHeader(t, 1<<26, tc.size), nil)
		if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("header size %d: %v; want ErrPayload saying %q", tc.size, err, tc.want)
		}
	}
}

// Whatever dictionary the header asks for, the decoder gets one no larger
// than the output wanted: a stream that asks for 1 GiB (or nearly 4 GiB,
// which ulikunitz/xz would refuse outright) decodes with at most that.
func TestLZMADictionaryBounded(t *testing.T) {
	for _, dict := range []uint32{1 << 30, 0xffff0000} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := extract(t, withLZMAHeader(t, dict, lzmaSizeUnknown), nil)
		runtime.ReadMemStats(&after)
		if err != nil || !bytes.Equal(got, testVmlinux()) {
			t.Errorf("dictionary %d: %d bytes, %v; want the vmlinux", dict, len(got), err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("dictionary %d: allocated %d KiB for a %d-byte vmlinux", dict, n>>10, len(testVmlinux()))
		}
	}
	// Decoding a 16 MiB output, cut short, takes no more than 16 MiB.
	const want = 16 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := io.ReadAll(mustLZMA(t, withLZMAHeader(t, 1<<30, lzmaSizeUnknown)[:100], want))
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Error("a stream cut short decoded without an error")
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 2*want {
		t.Errorf("allocated %d MiB for %d MiB of output wanted", n>>20, want>>20)
	}
}

func mustLZMA(t *testing.T, b []byte, want int64) io.Reader {
	t.Helper()
	r, err := newLZMAReader(bytes.NewReader(b), want)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
