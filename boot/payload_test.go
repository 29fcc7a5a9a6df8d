package boot

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"

	"github.com/govmm/govmm/memory"
)

// withPayload is a bzImage whose protected-mode kernel holds payload at
// payload_offset 0x100, as Linux's build lays it out.
func withPayload(t testing.TB, payload []byte) *Kernel {
	t.Helper()
	im := defaultImage()
	im.protected = 0x100 + len(payload) + 0x40
	b := im.bytes()
	sects := int(im.setupSects)
	if sects == 0 {
		sects = defaultSetupSects
	}
	setup := (sects + 1) * sectorSize
	le := binary.LittleEndian
	le.PutUint32(b[offPayloadOffset:], 0x100)
	le.PutUint32(b[offPayloadLength:], uint32(len(payload)))
	copy(b[setup+0x100:], payload)
	k, err := ParseKernel(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sized appends the uncompressed size, as Linux's size_append does.
func sized(compressed []byte, n int) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(compressed), uint32(n))
}

// compress returns vmlinux compressed with gzip and with lz4's legacy
// frame, as Linux's build would for its payload.
func compress(t testing.TB, vmlinux []byte) (gz, l4 *bytes.Buffer) {
	gz, l4 = &bytes.Buffer{}, &bytes.Buffer{}
	zw := gzip.NewWriter(gz)
	zw.Write(vmlinux)
	zw.Close()
	lw := lz4.NewWriter(l4)
	if err := lw.Apply(lz4.LegacyOption(true)); err != nil {
		t.Fatal(err)
	}
	lw.Write(vmlinux)
	lw.Close()
	return gz, l4
}

func TestExtractVmlinux(t *testing.T) {
	vmlinux := bytes.Repeat([]byte("\x7fELF vmlinux "), 5000)
	gz, l4 := compress(t, vmlinux)
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string // "" for success, else the compression in the error
	}{
		{"gzip", sized(gz.Bytes(), len(vmlinux)), ""},
		{"lz4", sized(l4.Bytes(), len(vmlinux)), ""},
		{"zstd cut short", sized([]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, 10), "zstd"},
		{"lzo cut short", sized([]byte{0x89, 'L', 'Z', 'O', 0}, 10), "lzo: lzop header: the file is cut short"},
		{"lzma cut short", sized([]byte{0x5d, 0, 0, 0}, 10), "lzma: header"},
		{"not ELF", sized(gzipped([]byte("MZ not an ELF")), 13), "not decompress to an ELF"},
		{"trailer lies", sized(gz.Bytes(), len(vmlinux)+1), "trailer says"},
		{"truncated", sized(gz.Bytes()[:gz.Len()/2], len(vmlinux)), "gzip"},
		{"unknown", sized([]byte("not compressed"), 14), "no compression Linux uses"},
	} {
		var out bytes.Buffer
		_, err := withPayload(t, tc.payload).ExtractVmlinux(&out)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && !bytes.Equal(out.Bytes(), vmlinux):
			t.Errorf("%s: extracted %d bytes, not the %d-byte vmlinux", tc.name, out.Len(), len(vmlinux))
		case tc.want != "" && (!errors.Is(err, ErrPayload) || !bytes.Contains([]byte(err.Error()), []byte(tc.want))):
			t.Errorf("%s: %v; want ErrPayload mentioning %q", tc.name, err, tc.want)
		}
	}
}

func gzipped(b []byte) []byte {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()
	return gz.Bytes()
}

// A payload that claims to lie past the kernel's end is refused.
func TestPayloadOutsideTheKernel(t *testing.T) {
	k := withPayload(t, []byte("x"))
	k.PayloadLength = 1 << 30
	if _, err := k.ExtractVmlinux(io.Discard); !errors.Is(err, ErrPayload) {
		t.Errorf("payload past the kernel: %v", err)
	}
}

// Debian's cloud kernel (LZ4) gives an ELF vmlinux with a PVH entry.
func TestExtractDebianKernel(t *testing.T) {
	paths := []string{debianKernel(t, "the synthetic payloads above cover extraction")}
	k, err := ReadKernel(openFile(t, paths[0]))
	if err != nil {
		t.Fatal(err)
	}
	extractAndLoad(t, k, paths[0])
}

// extractAndLoad extracts k's vmlinux and checks it loads through PVH.
func extractAndLoad(t *testing.T, k *Kernel, path string) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "vmlinux"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	start := time.Now()
	n, err := k.ExtractVmlinux(out)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	took := time.Since(start)
	v, err := ReadVmlinux(io.NewSectionReader(out, 0, n))
	if err != nil {
		t.Fatalf("vmlinux extracted from %s: %v", path, err)
	}
	if v.Entry < 1<<20 || len(v.Segments) < 2 {
		t.Errorf("vmlinux: PVH entry %#x, %d segments; want an entry above 1 MiB and the kernel's segments", v.Entry, len(v.Segments))
	}
	if _, err := LoadPVH(newRAM(t, 256*memory.MiB), PVHConfig{Kernel: v, Cmdline: "console=ttyS0"}); err != nil {
		t.Errorf("LoadPVH of the vmlinux from %s into 256 MiB: %v", path, err)
	}
	t.Logf("%s: %d-byte vmlinux in %v, PVH entry %#x, %d segments", filepath.Base(path), n, took.Round(time.Millisecond), v.Entry, len(v.Segments))
}

// stdKernelGlob finds Debian's standard kernel (linux-image-amd64) in
// govmm's cache, where `make sandbox-kernel` fetches it: XZ with the x86
// BCJ filter.
const stdKernelGlob = "kernel-std/boot/vmlinuz-*"

// Debian's standard kernel gives an ELF vmlinux with a PVH entry. The
// test runs when the kernel is in govmm's cache, or where
// GOVMM_STD_KERNEL names it; GOVMM_STD_KERNEL=1 (as CI sets it) makes a
// missing kernel a failure rather than a skip.
func TestExtractDebianStdKernel(t *testing.T) {
	path := os.Getenv("GOVMM_STD_KERNEL")
	if path == "" || path == "1" {
		glob := filepath.Join(cacheDir(), stdKernelGlob)
		paths, _ := filepath.Glob(glob)
		switch {
		case len(paths) > 0:
			path = paths[0]
		case path == "1":
			t.Fatalf("GOVMM_STD_KERNEL=1 and no kernel at %s: `make sandbox-kernel` fetches it", glob)
		default:
			t.Skipf("no Debian standard kernel at %s (`make sandbox-kernel` fetches it); the synthetic XZ payloads cover the decoder", glob)
		}
	}
	k, err := ReadKernel(openFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if kind, err := k.Compression(); kind != "xz" {
		t.Errorf("%s: compression %q (%v); Debian's standard kernel is XZ", path, kind, err)
	}
	extractAndLoad(t, k, path)
}

// cacheDir is govmm's download cache, as the Makefile exports it.
func cacheDir() string {
	if dir := os.Getenv("GOVMM_CACHE"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache/govmm")
}
