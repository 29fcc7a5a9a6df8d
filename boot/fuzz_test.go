package boot

import (
	"bytes"
	"io"
	"testing"

	"github.com/govmm/govmm/memory"
)

func FuzzParseKernel(f *testing.F) {
	f.Add(defaultImage().bytes())
	im := defaultImage()
	im.setupSects, im.relocatable, im.protected = 0, false, 1
	f.Add(im.bytes())
	f.Add([]byte("\x7fELF"))
	ram := newRAM(f, 64*memory.MiB)
	f.Fuzz(func(t *testing.T, image []byte) {
		k, err := ParseKernel(image)
		if err != nil {
			return
		}
		if k.Version < minVersion || k.XLoadFlags&xlfKernel64 == 0 {
			t.Fatalf("accepted protocol %#x with xloadflags %#x", k.Version, k.XLoadFlags)
		}
		if k.SetupSects < 1 || k.SetupSects > 255 {
			t.Fatalf("setup_sects %d", k.SetupSects)
		}
		setup := (k.SetupSects + 1) * sectorSize
		if k.ProtectedModeSize() < 1 || setup+k.ProtectedModeSize() != len(image) {
			t.Fatalf("setup %d + protected mode %d bytes in a %d-byte image", setup, k.ProtectedModeSize(), len(image))
		}
		if uint64(k.ProtectedModeSize()) > uint64(k.InitSize) {
			t.Fatalf("protected mode %d bytes past init_size %d", k.ProtectedModeSize(), k.InitSize)
		}
		if len(k.header) < offInitSize+4-hdrStart || hdrStart+len(k.header) > hdrMaxEnd {
			t.Fatalf("setup header of %d bytes", len(k.header))
		}

		// Whatever the header says, Load keeps the kernel in RAM above
		// 1 MiB, where it cannot overwrite the zero page or page tables.
		e, err := Load(ram, Config{Kernel: k, Initrd: bytes.NewReader([]byte("initrd")), Cmdline: "console=ttyS0"})
		if err != nil {
			return
		}
		if e.KernelStart < lowKernel || e.KernelEnd < e.KernelStart || e.KernelEnd > ram.LowEnd() {
			t.Fatalf("kernel at [%v, %v) with RAM ending at %v", e.KernelStart, e.KernelEnd, ram.LowEnd())
		}
		if e.RIP != uint64(e.KernelStart)+entry64Offset {
			t.Fatalf("RIP %#x for a kernel at %v", e.RIP, e.KernelStart)
		}
		if e.InitrdStart < e.KernelEnd || e.InitrdEnd > ram.LowEnd() || e.InitrdEnd-e.InitrdStart != 6 {
			t.Fatalf("initrd at [%v, %v), kernel ends at %v", e.InitrdStart, e.InitrdEnd, e.KernelEnd)
		}
		if uint64(e.InitrdEnd) > uint64(k.InitrdAddrMax)+1 {
			t.Fatalf("initrd ends at %v past initrd_addr_max %#x", e.InitrdEnd, k.InitrdAddrMax)
		}
	})
}

// FuzzLoad varies the header fields Load trusts, which random bytes rarely
// reach past ParseKernel's signature checks.
func FuzzLoad(f *testing.F) {
	f.Add(uint64(16<<20), uint32(2<<20), uint32(8<<20), uint32(0x7fffffff), uint32(2047), true, uint32(1<<20), uint32(20))
	f.Add(uint64(0), uint32(0), uint32(4096), uint32(0x37ffffff), uint32(255), false, uint32(0), uint32(0))
	f.Add(^uint64(0)-0xfff, uint32(2<<20), uint32(8<<20), uint32(0xffffffff), uint32(0xffffffff), true, uint32(5), uint32(0xffff))
	ram := newRAM(f, 64*memory.MiB)
	f.Fuzz(func(t *testing.T, pref uint64, align, initSize, initrdAddrMax, cmdlineSize uint32, relocatable bool, initrdLen, cmdlineLen uint32) {
		im := defaultImage()
		im.prefAddress, im.kernelAlign, im.initSize, im.relocatable = pref, align, initSize, relocatable
		im.initrdAddrMax, im.cmdlineSize = initrdAddrMax, cmdlineSize
		im.protected = 1024
		k, err := ParseKernel(im.bytes())
		if err != nil {
			return
		}
		cfg := Config{Kernel: k, Initrd: bytes.NewReader(make([]byte, initrdLen%(32<<20))), Cmdline: string(make([]byte, cmdlineLen%(1<<20)))}
		e, err := Load(ram, cfg)
		if err != nil {
			return
		}
		if e.KernelStart < lowKernel || e.KernelEnd != e.KernelStart+memory.GuestAddress(initSize) || e.KernelEnd > ram.LowEnd() {
			t.Fatalf("kernel at [%v, %v) with RAM ending at %v", e.KernelStart, e.KernelEnd, ram.LowEnd())
		}
		if cfg.Initrd.Size() > 0 && (e.InitrdStart < e.KernelEnd || e.InitrdEnd > ram.LowEnd() || uint64(e.InitrdEnd) > uint64(initrdAddrMax)+1) {
			t.Fatalf("initrd at [%v, %v): kernel ends at %v, initrd_addr_max %#x", e.InitrdStart, e.InitrdEnd, e.KernelEnd, initrdAddrMax)
		}
		if end := e.CmdlineAddr + memory.GuestAddress(len(cfg.Cmdline)); end >= memory.EBDAStart {
			t.Fatalf("command line ends at %v, in the EBDA", end)
		}
		if magic, err := ram.ReadUint32(e.ZeroPage + offHeaderMagic); err != nil || magic != headerMagic {
			t.Fatalf("zero page lost its setup header: %#x, %v", magic, err)
		}
	})
}

// FuzzBCJX86 checks the x86 filter's decoder keeps the length, never
// panics, and gives the same bytes however its input is split.
func FuzzBCJX86(f *testing.F) {
	f.Add(bcjInput(17, 64), uint32(0))
	f.Add([]byte{0xe8, 0xe9, 0x00, 0x00, 0x01, 0x00, 0xe8, 0xff, 0xff, 0xfe, 0xff}, uint32(0xfffffff0))
	f.Fuzz(func(t *testing.T, enc []byte, start uint32) {
		whole := bcjDecode(t, enc, start, bcjSplits["whole"])
		if len(whole) != len(enc) {
			t.Fatalf("%d bytes decoded to %d", len(enc), len(whole))
		}
		if split := bcjDecode(t, enc, start, bcjSplits["one byte"]); !bytes.Equal(split, whole) {
			t.Fatalf("byte by byte, decoded %x; whole, %x", split, whole)
		}
	})
}

// FuzzXZ feeds the xz stream reader arbitrary streams: it must end, with
// an error or not, without a panic and within its output bound, and read
// the same however its input is split.
func FuzzXZ(f *testing.F) {
	xz := committedXZ(f)
	f.Add(xz)
	f.Add(xz[:len(xz)-13])
	f.Add(reflag(xz, 0x00)[:200])
	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, xz []byte) {
		whole, errWhole := readXZ(xz, limit, bcjSplits["whole"])
		if len(whole) > limit {
			t.Fatalf("%d bytes out, past the %d asked for", len(whole), limit)
		}
		split, errSplit := readXZ(xz, limit, bcjSplits["half"])
		if !bytes.Equal(whole, split) || (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("whole: %d bytes, %v; in halves: %d bytes, %v", len(whole), errWhole, len(split), errSplit)
		}
	})
}

// readXZ decodes the stream xz, split as split splits it, up to limit bytes.
func readXZ(xz []byte, limit int64, split func(io.Reader) io.Reader) ([]byte, error) {
	r, err := newXZReader(split(bytes.NewReader(xz)), limit)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, limit+1))
}
