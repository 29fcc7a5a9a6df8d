package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// testVmlinux stands for a vmlinux: an ELF magic, then x86-like bytes
// that the x86 filter changes, repeated so that they compress.
func testVmlinux() []byte {
	return append([]byte("\x7fELF"), bytes.Repeat(bcjInput(7, 600), 40)...)
}

// committed is a file in testdata, made from testVmlinux() by a CLI:
// vmlinux.xz as Linux's xz_wrap.sh compresses an x86 kernel (`xz
// --format=xz --check=crc32 --x86 --lzma2`), vmlinux.zst by `zstd -19`,
// vmlinux.lzma by `lzma -9` and vmlinux.lzo by `lzop -9`, as Linux's build
// runs them.
func committed(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func committedXZ(t testing.TB) []byte { return committed(t, "vmlinux.xz") }

// compressed is testVmlinux() through the named CLI.
func compressed(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	return compressedFrom(t, testVmlinux(), name, args...)
}

// compressedFrom is in through the named CLI.
func compressedFrom(t *testing.T, in []byte, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("no %s CLI (apt-get install xz-utils zstd lzop); the committed testdata covers the decoder", name)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// extract extracts the vmlinux from a bzImage whose payload is
// compressed, with Linux's size trailer, and extra bytes between the two.
func extract(t *testing.T, compressed, extra []byte) ([]byte, error) {
	t.Helper()
	return extractSized(t, compressed, extra, len(testVmlinux()))
}

// extractSized is extract with a trailer that says size.
func extractSized(t *testing.T, compressed, extra []byte, size int) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	payload := sized(append(bytes.Clone(compressed), extra...), size)
	_, err := withPayload(t, payload).ExtractVmlinux(&out)
	return out.Bytes(), err
}

// wantExtracted checks an extraction gave vmlinux.
func wantExtracted(t *testing.T, got, vmlinux []byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, vmlinux) {
		t.Errorf("extracted %d bytes, differing from the %d-byte vmlinux at byte %d", len(got), len(vmlinux), firstDiff(got, vmlinux))
	}
}

func TestExtractXZ(t *testing.T) {
	for _, tc := range []struct {
		name  string
		xz    func(t *testing.T) []byte
		extra []byte
	}{
		{"committed", func(t *testing.T) []byte { return committedXZ(t) }, nil},
		{"stream padding after", func(t *testing.T) []byte { return committedXZ(t) }, make([]byte, 8)},
		{"other bytes after", func(t *testing.T) []byte { return committedXZ(t) }, []byte("not xz")},
		{"as Linux compresses", func(t *testing.T) []byte {
			return compressed(t, "xz", "--format=xz", "--check=crc32", "--x86", "--lzma2=preset=9,dict=32MiB")
		}, nil},
		{"CRC64", func(t *testing.T) []byte { return compressed(t, "xz", "--check=crc64", "--x86", "--lzma2") }, nil},
		{"SHA-256", func(t *testing.T) []byte { return compressed(t, "xz", "--check=sha256", "--x86", "--lzma2") }, nil},
		{"no check", func(t *testing.T) []byte { return compressed(t, "xz", "--check=none", "--x86=start=4096", "--lzma2") }, nil},
		{"LZMA2 alone", func(t *testing.T) []byte { return compressed(t, "xz", "--check=crc32", "--lzma2") }, nil},
		{"blocks with sizes", func(t *testing.T) []byte { return compressed(t, "xz", "-T2", "--block-size=5000", "--x86", "--lzma2") }, nil},
		{"stored", func(t *testing.T) []byte {
			return compressed(t, "xz", "--x86", "--lzma2=preset=0,mode=fast,nice=2,depth=1,dict=4KiB")
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := extract(t, tc.xz(t), tc.extra)
			wantExtracted(t, got, testVmlinux(), err)
		})
	}
}

// A stream cut anywhere is an error that names the compression, never a
// short vmlinux.
func TestExtractTruncated(t *testing.T) {
	for kind, file := range map[string]string{"xz": "vmlinux.xz", "zstd": "vmlinux.zst", "lzma": "vmlinux.lzma", "lzo": "vmlinux.lzo"} {
		b := committed(t, file)
		for n := len(xzMagic); n < len(b); n++ {
			_, err := extract(t, b[:n], nil)
			if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), kind) {
				t.Fatalf("%s cut to %d of %d bytes: %v; want ErrPayload naming %s", file, n, len(b), err, kind)
			}
		}
	}
	xz := committedXZ(t)
	if _, err := extract(t, xz[:len(xz)-20], nil); !strings.Contains(err.Error(), "cut short") {
		t.Errorf("xz cut inside the index: %v; want it said to be cut short", err)
	}
}

// A stream with a byte changed anywhere gives an error, or the vmlinux as
// it was. In the xz stream every byte is covered by a CRC32, the data's
// check or a rule, except an LZMA2 chunk's compressed size, which
// ulikunitz/xz's Reader2 does not hold the chunk to (it decodes by the
// uncompressed size) and which does not change what it decodes to. lzop
// checksums its header and each block's data. A legacy LZMA stream has no
// check at all: a changed byte there may change the vmlinux unnoticed.
func TestExtractCorrupted(t *testing.T) {
	for _, tc := range []struct {
		file      string
		unnoticed int // changed bytes that may go unnoticed
	}{{"vmlinux.xz", 4}, {"vmlinux.zst", 4}, {"vmlinux.lzo", 0}} {
		b := committed(t, tc.file)
		unnoticed := 0
		for i := range b {
			for _, flip := range []byte{0x01, 0x80} {
				bad := bytes.Clone(b)
				bad[i] ^= flip
				got, err := extract(t, bad, nil)
				switch {
				case err == nil && !bytes.Equal(got, testVmlinux()):
					t.Errorf("%s byte %d ^ %#x: extracted a vmlinux that differs at byte %d", tc.file, i, flip, firstDiff(got, testVmlinux()))
				case err == nil:
					unnoticed++
				case !errors.Is(err, ErrPayload):
					t.Errorf("%s byte %d ^ %#x: %v; want ErrPayload", tc.file, i, flip, err)
				}
			}
		}
		if unnoticed > tc.unnoticed {
			t.Errorf("%s: %d changed bytes went unnoticed", tc.file, unnoticed)
		}
	}
}

// What the decoder says for streams that break a rule the CRCs do not.
func TestXZErrors(t *testing.T) {
	xz := committedXZ(t)
	for _, tc := range []struct {
		name string
		xz   []byte
		want string
	}{
		{"not xz", []byte("\xfd7zXZ\x01" + string(xz[6:])), "not the xz magic"},
		{"check unsupported", reflag(xz, 0x02), "check type 0x2 is not supported"},
		{"filter unsupported", refilter(xz, 0x03), "filter 0x3 as filter 1 of 2 is not supported"},
		{"LZMA2 dictionary", reprop(xz, 41), "LZMA2 properties 29"},
	} {
		_, err := newXZReader(bytes.NewReader(tc.xz), 1<<20)
		if err == nil {
			_, err = io.Copy(io.Discard, mustXZ(t, tc.xz))
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func mustXZ(t *testing.T, xz []byte) io.Reader {
	t.Helper()
	return mustXZLimit(t, xz, 1<<20)
}

func mustXZLimit(t *testing.T, xz []byte, maxOut int64) io.Reader {
	t.Helper()
	r, err := newXZReader(bytes.NewReader(xz), maxOut)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// reflag is xz with the stream flags' check type set to id, in its header
// and footer, their CRC32s made right.
func reflag(xz []byte, id byte) []byte {
	b := bytes.Clone(xz)
	for _, off := range []int{6, len(b) - 4} {
		b[off+1] = id
	}
	binary.LittleEndian.PutUint32(b[8:], crc32.ChecksumIEEE(b[6:8]))
	binary.LittleEndian.PutUint32(b[len(b)-12:], crc32.ChecksumIEEE(b[len(b)-8:len(b)-2]))
	return b
}

// The committed stream's block header starts at byte 12: its size, its
// flags, then x86 (04 00) and LZMA2 (21 01 dict).
const xzBlock0 = 12

// refilter is xz with its first filter's ID set to id.
func refilter(xz []byte, id byte) []byte { return rehead(xz, 2, id) }

// reprop is xz with its LZMA2 dictionary byte set to p.
func reprop(xz []byte, p byte) []byte { return rehead(xz, 6, p) }

// rehead is xz with byte off of the first block header set to v, and the
// header's CRC32 made right.
func rehead(xz []byte, off int, v byte) []byte {
	b := bytes.Clone(xz)
	h := b[xzBlock0 : xzBlock0+(int(b[xzBlock0])+1)*4]
	h[off] = v
	binary.LittleEndian.PutUint32(h[len(h)-4:], crc32.ChecksumIEEE(h[:len(h)-4]))
	return b
}

func TestExtractZstd(t *testing.T) {
	for _, tc := range []struct {
		name string
		zst  func(t *testing.T) []byte
	}{
		{"committed", func(t *testing.T) []byte { return committed(t, "vmlinux.zst") }},
		{"as Linux compresses", func(t *testing.T) []byte { return compressed(t, "zstd", "-q", "-22", "--ultra", "-c") }},
		{"no checksum", func(t *testing.T) []byte { return compressed(t, "zstd", "-q", "-3", "--no-check", "-c") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := extract(t, tc.zst(t), nil)
			wantExtracted(t, got, testVmlinux(), err)
		})
	}
}

// A block may say it holds no bytes (section 3.1.4): one that does,
// built here field by field, decodes to nothing.
func TestXZEmptyBlock(t *testing.T) {
	out, err := io.ReadAll(mustXZ(t, emptyBlocksXZ(1, true, 0x16)))
	if err != nil || len(out) != 0 {
		t.Errorf("empty block: %d bytes, %v; want none and no error", len(out), err)
	}
}

// A stream of empty blocks that each ask for the largest dictionary
// without saying their size is refused once their dictionaries add up to
// twice the output wanted, before the host has allocated more than that.
func TestXZDictionariesBounded(t *testing.T) {
	const maxOut = 16 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := io.ReadAll(mustXZLimit(t, emptyBlocksXZ(100, false, 40), maxOut))
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "more than twice") {
		t.Errorf("100 empty blocks asking for 4 GiB each: %v; want an error saying the dictionaries take more than twice the output", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*maxOut {
		t.Errorf("allocated %d MiB to decode nothing, for %d MiB of output wanted", n>>20, maxOut>>20)
	}
	// A block that states its size needs no more dictionary than that.
	if _, err := io.ReadAll(mustXZLimit(t, emptyBlocksXZ(100, true, 40), maxOut)); err != nil {
		t.Errorf("100 empty blocks that say so: %v", err)
	}
}

// emptyBlocksXZ is an xz stream of n blocks with no data, built field by
// field: LZMA2 with dictionary byte dict, sized says whether each header
// states the uncompressed size (0).
func emptyBlocksXZ(n int, sized bool, dict byte) []byte {
	le := binary.LittleEndian
	flags := []byte{0x00, 0x01} // CRC32
	s := append(bytes.Clone(xzMagic), flags...)
	s = le.AppendUint32(s, crc32.ChecksumIEEE(flags))
	// Block header: 12 bytes, LZMA2, padding, CRC32.
	h := []byte{0x02, 0x00, xzFilterLZMA2, 0x01, dict, 0x00, 0x00, 0x00}
	if sized {
		h = []byte{0x02, 0x80, 0x00, xzFilterLZMA2, 0x01, dict, 0x00, 0x00}
	}
	h = le.AppendUint32(h, crc32.ChecksumIEEE(h))
	index := []byte{0x00}
	index = binary.AppendUvarint(index, uint64(n)) // as xz's VLI
	for range n {
		s = append(s, h...)
		s = append(s, 0x00, 0, 0, 0)        // LZMA2's end marker alone, padding
		s = le.AppendUint32(s, 0)           // the CRC32 of nothing
		index = append(index, 12+1+4, 0x00) // unpadded and uncompressed sizes
	}
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	s = le.AppendUint32(append(s, index...), crc32.ChecksumIEEE(index))
	footer := le.AppendUint32(nil, uint32(len(index)+4)/4-1)
	footer = append(footer, flags...)
	s = le.AppendUint32(s, crc32.ChecksumIEEE(footer))
	return append(append(s, footer...), 'Y', 'Z')
}
