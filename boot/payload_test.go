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
		{"xz", sized([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, 10), "xz compression is not supported"},
		{"zstd", sized([]byte{0x28, 0xb5, 0x2f, 0xfd, 0}, 10), "zstd compression is not supported"},
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
	out, err := os.Create(filepath.Join(t.TempDir(), "vmlinux"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	n, err := k.ExtractVmlinux(out)
	if err != nil {
		t.Fatalf("%s: %v", paths[0], err)
	}
	v, err := ReadVmlinux(io.NewSectionReader(out, 0, n))
	if err != nil {
		t.Fatalf("vmlinux extracted from %s: %v", paths[0], err)
	}
	if v.Entry < 1<<20 || len(v.Segments) < 2 {
		t.Errorf("vmlinux: PVH entry %#x, %d segments; want an entry above 1 MiB and the kernel's segments", v.Entry, len(v.Segments))
	}
	if _, err := LoadPVH(newRAM(t, 256*memory.MiB), PVHConfig{Kernel: v, Cmdline: "console=ttyS0"}); err != nil {
		t.Errorf("LoadPVH of the vmlinux from %s into 256 MiB: %v", paths[0], err)
	}
	t.Logf("%s: %d-byte vmlinux, PVH entry %#x, %d segments", filepath.Base(paths[0]), n, v.Entry, len(v.Segments))
}
