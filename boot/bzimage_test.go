package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// image is the setup header of a synthetic bzImage, with the values a
// Debian 6.1 kernel carries unless a test changes them.
type image struct {
	setupSects    uint8
	version       uint16
	loadFlags     uint8
	jump          uint8 // offset from 0x202 of the end of the header
	initrdAddrMax uint32
	kernelAlign   uint32
	relocatable   bool
	xloadFlags    uint16
	cmdlineSize   uint32
	prefAddress   uint64
	initSize      uint32
	protected     int // bytes of protected-mode kernel
}

func defaultImage() image {
	return image{
		setupSects:    4,
		version:       0x020f,
		loadFlags:     0x01, // LOADED_HIGH
		jump:          0x6a,
		initrdAddrMax: 0x7fffffff,
		kernelAlign:   2 << 20,
		relocatable:   true,
		xloadFlags:    0x7f,
		cmdlineSize:   2047,
		prefAddress:   16 << 20,
		initSize:      8 << 20,
		protected:     3 * sectorSize,
	}
}

// bytes lays the image out: boot sector and setup, then the protected-mode
// kernel filled with a pattern a test can find in guest RAM.
func (im image) bytes() []byte {
	setup := int(im.setupSects)
	if setup == 0 {
		setup = defaultSetupSects
	}
	b := make([]byte, (setup+1)*sectorSize+im.protected)
	le := binary.LittleEndian
	b[offSetupSects] = im.setupSects
	le.PutUint16(b[offBootFlag:], bootFlagMagic)
	b[offJump], b[offJump+1] = 0xeb, im.jump
	le.PutUint32(b[offHeaderMagic:], headerMagic)
	le.PutUint16(b[offVersion:], im.version)
	b[offLoadFlags] = im.loadFlags
	le.PutUint32(b[offInitrdAddrMax:], im.initrdAddrMax)
	le.PutUint32(b[offKernelAlign:], im.kernelAlign)
	if im.relocatable {
		b[offRelocatable] = 1
	}
	le.PutUint16(b[offXLoadFlags:], im.xloadFlags)
	le.PutUint32(b[offCmdlineSize:], im.cmdlineSize)
	le.PutUint64(b[offPrefAddress:], im.prefAddress)
	le.PutUint32(b[offInitSize:], im.initSize)
	for i := (setup + 1) * sectorSize; i < len(b); i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func (im image) parse(t *testing.T) *Kernel {
	t.Helper()
	k, err := ParseKernel(im.bytes())
	if err != nil {
		t.Fatalf("ParseKernel of a valid synthetic bzImage: %v", err)
	}
	return k
}

func TestParseKernel(t *testing.T) {
	im := defaultImage()
	k := im.parse(t)
	want := Kernel{
		Version: 0x020f, SetupSects: 4, LoadFlags: 0x01, XLoadFlags: 0x7f, Relocatable: true,
		KernelAlignment: 2 << 20, PrefAddress: 16 << 20, InitSize: 8 << 20, InitrdAddrMax: 0x7fffffff, CmdlineSize: 2047,
	}
	got := *k
	got.header, got.protected = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseKernel = %+v, want %+v", got, want)
	}
	if k.ProtectedModeSize() != im.protected {
		t.Errorf("ProtectedModeSize = %d, want %d", k.ProtectedModeSize(), im.protected)
	}
	if len(k.header) != 0x26c-hdrStart {
		t.Errorf("setup header is %d bytes, want %d (0x1f1 to the jump target 0x26c)", len(k.header), 0x26c-hdrStart)
	}
}

func TestParseKernelDefaultsSetupSects(t *testing.T) {
	im := defaultImage()
	im.setupSects = 0 // boot.rst: "If this field is 0, the real value is 4."
	k := im.parse(t)
	if k.SetupSects != 4 || k.ProtectedModeSize() != im.protected {
		t.Errorf("setup_sects 0 parsed as %d sectors with %d protected-mode bytes, want 4 and %d",
			k.SetupSects, k.ProtectedModeSize(), im.protected)
	}
}

func TestParseKernelErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		image  func() []byte
		target error
		says   string
	}{
		{"empty file", func() []byte { return nil }, ErrNotBzImage, "too short"},
		{"too short for the header", func() []byte { return defaultImage().bytes()[:0x263] }, ErrNotBzImage, "too short"},
		{"an ELF vmlinux", func() []byte {
			b := make([]byte, 4096)
			copy(b, "\x7fELF")
			return b
		}, ErrNotBzImage, "0xAA55"},
		{"no boot flag", func() []byte {
			b := defaultImage().bytes()
			b[offBootFlag] = 0
			return b
		}, ErrNotBzImage, "0xAA55"},
		{"no HdrS", func() []byte {
			b := defaultImage().bytes()
			copy(b[offHeaderMagic:], "HdrZ")
			return b
		}, ErrNotBzImage, "HdrS"},
		{"protocol 2.11", func() []byte {
			im := defaultImage()
			im.version = 0x020b
			return im.bytes()
		}, ErrProtocol, "protocol 2.11"},
		{"no 64-bit entry point", func() []byte {
			im := defaultImage()
			im.xloadFlags = 0x7e
			return im.bytes()
		}, ErrProtocol, "64-bit"},
		{"setup but no kernel", func() []byte {
			im := defaultImage()
			im.protected = 0
			return im.bytes()
		}, ErrNotBzImage, "leaves no kernel"},
		{"setup_sects past the file", func() []byte {
			im := defaultImage()
			b := im.bytes()
			b[offSetupSects] = 200
			return b
		}, ErrNotBzImage, "leaves no kernel"},
		{"header ends before init_size", func() []byte {
			im := defaultImage()
			im.jump = 0x5e // header ends at 0x260
			return im.bytes()
		}, ErrNotBzImage, "setup header ends"},
		{"header ends past the zero page's room", func() []byte {
			im := defaultImage()
			im.jump = 0x8f
			return im.bytes()
		}, ErrNotBzImage, "setup header ends"},
		{"kernel larger than init_size", func() []byte {
			im := defaultImage()
			im.initSize = uint32(im.protected - 1)
			return im.bytes()
		}, ErrNotBzImage, "init_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKernel(tc.image())
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("ParseKernel = %+v, %v; want an error wrapping %q that says %q", k, err, tc.target, tc.says)
			}
		})
	}
}

// debianKernelGlob finds the kernel `make kernel` fetches for the boot tests.
const debianKernelGlob = "/root/.cache/govmm/kernel-cloud/boot/vmlinuz-*"

// debianKernel is the path of the Debian kernel `make kernel` fetched; a
// test without it is skipped, saying what covers its ground instead.
func debianKernel(t *testing.T, instead string) string {
	t.Helper()
	paths, _ := filepath.Glob(debianKernelGlob)
	if len(paths) == 0 {
		t.Skipf("no Debian kernel at %s: `make kernel` fetches it; %s", debianKernelGlob, instead)
	}
	return paths[0]
}

// openFile opens path as an Image for the test's life.
func openFile(t *testing.T, path string) *io.SectionReader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return io.NewSectionReader(f, 0, st.Size())
}

func TestParseDebianKernel(t *testing.T) {
	paths := []string{debianKernel(t, "the synthetic images above cover the parser")}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKernel(b)
	if err != nil {
		t.Fatalf("ParseKernel(%s): %v", paths[0], err)
	}
	if k.Version < 0x020f || k.XLoadFlags&xlfKernel64 == 0 || !k.Relocatable || k.LoadFlags&1 == 0 {
		t.Errorf("%s: %+v, want protocol 2.15+, a 64-bit entry, relocatable and loaded high", paths[0], k)
	}
	if setup := (k.SetupSects + 1) * sectorSize; setup+k.ProtectedModeSize() != len(b) {
		t.Errorf("setup %d + protected mode %d != file size %d", setup, k.ProtectedModeSize(), len(b))
	}
	if !bytes.Equal(k.header[offHeaderMagic-hdrStart:][:4], []byte("HdrS")) {
		t.Errorf("kept header does not hold HdrS at 0x202: % x", k.header[:32])
	}
	if k.InitrdAddrMax == 0 || k.CmdlineSize == 0 || k.PrefAddress < 1<<20 {
		t.Errorf("%s: initrd_addr_max %#x, cmdline_size %d, pref_address %#x look wrong", paths[0], k.InitrdAddrMax, k.CmdlineSize, k.PrefAddress)
	}
}
