package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
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
	// The limit bounds each block's dictionary, which the decoder
	// allocates and clears whole, twice an input: 64 KiB is room for the
	// committed stream's 24004 bytes, so that a seed is read to its
	// footer, and costs a sixteenth of 1 MiB's clearing.
	const limit = 64 << 10
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

// FuzzReadVmlinux feeds ELF files through ReadVmlinux and, when accepted,
// LoadPVH. An accepted kernel has a PVH entry and 1 to maxSegments
// segments, each with its file bytes inside the file and no more of them
// than of memory; a loaded one lies in RAM above 1 MiB, holds exactly the
// file's bytes, and is entered at its PVH entry with EBX at the start info.
func FuzzReadVmlinux(f *testing.F) {
	seeds := []func(*elfImage){
		func(*elfImage) {},
		func(im *elfImage) { im.entry = im.entry[:4] },
		func(im *elfImage) { im.entry = binary.LittleEndian.AppendUint64(nil, 1<<32) },
		func(im *elfImage) { im.segs[1].paddr = im.segs[0].paddr + 1 },     // overlap
		func(im *elfImage) { im.segs[0].paddr = 0x9000 },                   // below 1 MiB
		func(im *elfImage) { im.segs[1].paddr = ^uint64(0) - 0x1000 },      // wraps
		func(im *elfImage) { im.segs[1].memsz = 1 << 40 },                  // past RAM
		func(im *elfImage) { im.truncate = 100 },                           // truncated
		func(im *elfImage) { im.noteName, im.entry = "Xen", []byte{1, 2} }, // bad note
		func(im *elfImage) { im.segs = nil },
	}
	for _, edit := range seeds {
		im := vmlinuxImage()
		edit(&im)
		f.Add(im.bytes())
	}
	ram := newRAM(f, 64*memory.MiB)
	f.Fuzz(func(t *testing.T, image []byte) {
		v, err := ReadVmlinux(bytes.NewReader(image))
		if err != nil {
			return
		}
		if n := len(v.Segments); n < 1 || n > maxSegments {
			t.Fatalf("accepted %d segments", n)
		}
		files := make([][]byte, len(v.Segments))
		for i, s := range v.Segments {
			files[i], err = io.ReadAll(io.NewSectionReader(s.Data, 0, s.Data.Size()))
			if err != nil || int64(len(files[i])) != s.Data.Size() || uint64(len(files[i])) > s.MemSize || !bytes.Contains(image, files[i]) {
				t.Fatalf("segment %d: %d of %d file bytes for %d of memory, %v", i, len(files[i]), s.Data.Size(), s.MemSize, err)
			}
		}
		e, err := LoadPVH(ram, PVHConfig{Kernel: v, Initrd: bytes.NewReader([]byte("initrd")), Cmdline: "console=hvc0"})
		if err != nil {
			return
		}
		if e.KernelStart < lowKernel || e.KernelEnd > ram.LowEnd() || e.RIP != uint64(v.Entry) || e.RBX != uint64(startInfoAddr) {
			t.Fatalf("kernel at [%v, %v) entered at %#x with EBX %#x; RAM ends at %v", e.KernelStart, e.KernelEnd, e.RIP, e.RBX, ram.LowEnd())
		}
		for i, s := range v.Segments {
			got := make([]byte, len(files[i]))
			if err := ram.ReadAt(got, memory.GuestAddress(s.Addr)); err != nil || !bytes.Equal(got, files[i]) {
				t.Fatalf("segment %d at %#x does not hold its file bytes: %v", i, s.Addr, err)
			}
			if s.Addr < uint64(e.KernelStart) || s.Addr+s.MemSize > uint64(e.KernelEnd) {
				t.Fatalf("segment %d at [%#x, +%#x) outside the kernel's [%v, %v)", i, s.Addr, s.MemSize, e.KernelStart, e.KernelEnd)
			}
		}
		if e.InitrdStart < e.KernelEnd || e.InitrdEnd > ram.LowEnd() || e.InitrdEnd-e.InitrdStart != 6 {
			t.Fatalf("initrd at [%v, %v), kernel ends at %v", e.InitrdStart, e.InitrdEnd, e.KernelEnd)
		}
		if magic, err := ram.ReadUint32(startInfoAddr); err != nil || magic != startInfoMagic {
			t.Fatalf("start info magic %#x, %v", magic, err)
		}
	})
}

// extractLimit keeps the fuzz target fast: the decoders allocate
// buffers up to the size the trailer says (an xz dictionary, whole), so a
// payload whose trailer says more has it cut to its remainder modulo
// extractLimit+1 and is decompressed as such. The fuzzer often makes
// trailers of megabytes from the seeds' by inserting bytes.
const extractLimit = 1 << 20

// counter is an io.Writer that counts and keeps the first bytes.
type counter struct {
	n    int64
	head []byte
}

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if len(c.head) < 64 {
		c.head = append(c.head, p[:min(len(p), 64-len(c.head))]...)
	}
	return len(p), nil
}

// FuzzExtractVmlinux extracts fuzzed payloads from a bzImage. Every error
// wraps ErrPayload; the output is never more than one byte past what the
// trailer says, and a success gives exactly that many bytes from a
// compression ExtractVmlinux supports.
func FuzzExtractVmlinux(f *testing.F) {
	vmlinux := vmlinuxImage().bytes()
	gz, l4 := compress(f, vmlinux)
	for _, p := range [][]byte{
		sized(gz.Bytes(), len(vmlinux)), sized(l4.Bytes(), len(vmlinux)), sized(gz.Bytes(), len(vmlinux)+1),
		sized(gz.Bytes()[:gz.Len()/2], len(vmlinux)), sized([]byte("BZh91AY&SY"), 10),
		sized([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, 10), sized(committedXZ(f), len(testVmlinux())), {0x1f, 0x8b}, nil,
		sized(committed(f, "vmlinux.lzma"), len(testVmlinux())), sized(committed(f, "vmlinux.lzo"), len(testVmlinux())),
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if n := len(payload); n >= 4 && binary.LittleEndian.Uint32(payload[n-4:]) > extractLimit {
			payload = bytes.Clone(payload)
			binary.LittleEndian.PutUint32(payload[n-4:], binary.LittleEndian.Uint32(payload[n-4:])%(extractLimit+1))
		}
		k := withPayload(t, payload)
		var out counter
		n, err := k.ExtractVmlinux(&out)
		if err != nil && !errors.Is(err, ErrPayload) {
			t.Fatalf("error %v does not wrap ErrPayload", err)
		}
		if n != out.n {
			t.Fatalf("returned %d bytes, wrote %d", n, out.n)
		}
		if len(payload) < 4 {
			if err == nil {
				t.Fatalf("extracted %d bytes from a %d-byte payload", n, len(payload))
			}
			return
		}
		want := int64(binary.LittleEndian.Uint32(payload[len(payload)-4:]))
		if n > want+1 || err == nil && n != want {
			t.Fatalf("extracted %d bytes, the trailer says %d: %v", n, want, err)
		}
		if _, cerr := k.Compression(); err == nil && cerr != nil {
			t.Fatalf("extracted a payload of no compression: %v", cerr)
		}
	})
}
