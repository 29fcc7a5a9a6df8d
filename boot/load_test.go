package boot

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govmm/govmm/memory"
)

func newRAM(t testing.TB, size uint64) *memory.RAM {
	t.Helper()
	ram, err := memory.New(size)
	if err != nil {
		t.Fatalf("memory.New(%d MiB): %v", size>>20, err)
	}
	t.Cleanup(func() {
		if err := ram.Close(); err != nil {
			t.Error(err)
		}
	})
	return ram
}

func load(t *testing.T, ram *memory.RAM, cfg Config) *Entry {
	t.Helper()
	e, err := Load(ram, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return e
}

func read(t *testing.T, ram *memory.RAM, addr memory.GuestAddress, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if err := ram.ReadAt(b, addr); err != nil {
		t.Fatal(err)
	}
	return b
}

func u32(t *testing.T, ram *memory.RAM, addr memory.GuestAddress) uint32 {
	t.Helper()
	v, err := ram.ReadUint32(addr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func u64(t *testing.T, ram *memory.RAM, addr memory.GuestAddress) uint64 {
	t.Helper()
	v, err := ram.ReadUint64(addr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A file that shrinks between ReadKernel and Load (replaced while govmm
// starts) is an error naming what was short, not a half-loaded kernel.
func TestLoadRefusesAShrunkFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(path, defaultImage().bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	img := openFile(t, path)
	k, err := ReadKernel(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, img.Size()-100); err != nil {
		t.Fatal(err)
	}
	_, err = Load(newRAM(t, 256*memory.MiB), Config{Kernel: k})
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "load kernel") {
		t.Errorf("Load of a kernel file cut short: %v; want an unexpected EOF naming the kernel", err)
	}
}

// ReadKernel reads a bzImage's header only; what Load puts in guest RAM is
// the file's bytes, as ParseKernel of the whole file would.
func TestReadKernelLoadsTheFile(t *testing.T) {
	image := defaultImage().bytes()
	for i := len(image) - defaultImage().protected; i < len(image); i++ {
		image[i] = byte(i * 31)
	}
	path := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(path, image, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := ReadKernel(openFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	ram := newRAM(t, 256*memory.MiB)
	e := load(t, ram, Config{Kernel: k})
	want := image[len(image)-defaultImage().protected:]
	if got := read(t, ram, e.KernelStart, len(want)); !bytes.Equal(got, want) {
		t.Error("guest RAM at KernelStart does not hold the file's protected-mode kernel")
	}
}

func TestLoadLaysOutKernelCmdlineAndInitrd(t *testing.T) {
	ram := newRAM(t, 256*memory.MiB)
	k := defaultImage().parse(t)
	initrd := bytes.Repeat([]byte("initrd!"), 150000) // ~1 MiB, not page sized
	const cmdline = "console=ttyS0 reboot=k panic=-1"
	e := load(t, ram, Config{Kernel: k, Initrd: bytes.NewReader(initrd), Cmdline: cmdline, RSDP: 0xe0000})

	if e.KernelStart != 16*memory.MiB || e.KernelEnd != e.KernelStart+8*memory.MiB {
		t.Errorf("kernel at [%v, %v), want [16 MiB, 24 MiB): pref_address and init_size", e.KernelStart, e.KernelEnd)
	}
	protected := make([]byte, k.ProtectedModeSize())
	if _, err := k.protected.ReadAt(protected, 0); err != nil {
		t.Fatal(err)
	}
	if got := read(t, ram, e.KernelStart, k.ProtectedModeSize()); !bytes.Equal(got, protected) {
		t.Error("protected-mode kernel not found at KernelStart")
	}
	if e.RIP != uint64(e.KernelStart)+0x200 {
		t.Errorf("RIP = %#x, want the 64-bit entry at KernelStart+0x200 = %#x", e.RIP, uint64(e.KernelStart)+0x200)
	}

	// The initrd: page aligned, above the kernel, as high as RAM allows.
	if e.InitrdStart%pageSize != 0 || e.InitrdStart < e.KernelEnd || e.InitrdEnd > ram.LowEnd() ||
		e.InitrdEnd-e.InitrdStart != memory.GuestAddress(len(initrd)) || ram.LowEnd()-e.InitrdEnd >= pageSize {
		t.Errorf("initrd at [%v, %v), want %d bytes page aligned, just below the end of RAM %v and above the kernel's end %v",
			e.InitrdStart, e.InitrdEnd, len(initrd), ram.LowEnd(), e.KernelEnd)
	}
	if got := read(t, ram, e.InitrdStart, len(initrd)); !bytes.Equal(got, initrd) {
		t.Error("initrd bytes not found at InitrdStart")
	}

	zp := e.ZeroPage
	if e.RSI != uint64(zp) || zp != zeroPageAddr {
		t.Errorf("RSI = %#x, zero page %v; want both %v", e.RSI, zp, zeroPageAddr)
	}
	for _, f := range []struct {
		name string
		off  memory.GuestAddress
		want uint32
	}{
		{"ramdisk_image", offRamdiskImage, uint32(e.InitrdStart)},
		{"ramdisk_size", offRamdiskSize, uint32(len(initrd))},
		{"ext_ramdisk_image", zpExtRamdiskImage, 0},
		{"ext_ramdisk_size", zpExtRamdiskSize, 0},
		{"cmd_line_ptr", offCmdLinePtr, uint32(e.CmdlineAddr)},
		{"ext_cmd_line_ptr", zpExtCmdLinePtr, 0},
		{"acpi_rsdp_addr", zpACPIRSDPAddr, 0xe0000},
		{"HdrS magic", offHeaderMagic, headerMagic},
		{"init_size", offInitSize, 8 << 20},
	} {
		if got := u32(t, ram, zp+f.off); got != f.want {
			t.Errorf("zero page %s (%#x) = %#x, want %#x", f.name, uint64(f.off), got, f.want)
		}
	}
	hdr := read(t, ram, zp, zeroPageSize)
	if hdr[offTypeOfLoader] != loaderUndefined {
		t.Errorf("type_of_loader = %#x, want %#x", hdr[offTypeOfLoader], loaderUndefined)
	}
	if hdr[offLoadFlags] != 0x01|loadFlagCanUseHeap {
		t.Errorf("loadflags = %#x, want the kernel's LOADED_HIGH plus CAN_USE_HEAP", hdr[offLoadFlags])
	}
	if got := uint16(hdr[offHeapEndPtr]) | uint16(hdr[offHeapEndPtr+1])<<8; got != heapEnd {
		t.Errorf("heap_end_ptr = %#x, want %#x", got, heapEnd)
	}

	got := read(t, ram, e.CmdlineAddr, len(cmdline)+1)
	if string(got) != cmdline+"\x00" {
		t.Errorf("command line at %v = %q, want %q NUL-terminated", e.CmdlineAddr, got, cmdline)
	}
	if e.CmdlineAddr+memory.GuestAddress(k.CmdlineSize)+1 > memory.EBDAStart {
		t.Errorf("command line room [%v, +%d] runs into the EBDA", e.CmdlineAddr, k.CmdlineSize+1)
	}
}

func TestLoadE820MatchesMemoryLayout(t *testing.T) {
	for _, size := range []uint64{64 * memory.MiB, 3 * memory.GiB, 4 * memory.GiB} {
		ram := newRAM(t, size)
		e := load(t, ram, Config{Kernel: defaultImage().parse(t)})
		want := ram.E820()
		zp := e.ZeroPage
		n := read(t, ram, zp+zpE820Entries, 1)[0]
		if int(n) != len(want) {
			t.Fatalf("%d MiB guest: e820_entries = %d, want %d", size>>20, n, len(want))
		}
		var ramBytes uint64
		for i, w := range want {
			at := zp + zpE820Table + memory.GuestAddress(i*e820EntrySize)
			addr, sz, typ := u64(t, ram, at), u64(t, ram, at+8), u32(t, ram, at+16)
			if addr != uint64(w.Addr) || sz != w.Size || typ != uint32(w.Type) {
				t.Errorf("%d MiB guest: e820[%d] = {%#x, %#x, %d}, want %+v", size>>20, i, addr, sz, typ, w)
			}
			if typ == uint32(memory.E820RAM) {
				ramBytes += sz
				if end := addr + sz; addr < uint64(memory.DeviceHoleEnd) && end > uint64(memory.DeviceHoleStart) {
					t.Errorf("%d MiB guest: e820[%d] RAM [%#x, %#x) overlaps the device hole", size>>20, i, addr, end)
				}
			}
		}
		if reserved := uint64(memory.BIOSEnd - memory.EBDAStart); ramBytes+reserved != size {
			t.Errorf("%d MiB guest: e820 RAM %d + reserved BIOS area %d != guest size", size>>20, ramBytes, reserved)
		}
	}
}

func TestLoadInitrdBelowInitrdAddrMax(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ram     uint64
		addrMax uint32
	}{
		{"4 GiB guest, 2 GiB limit", 4 * memory.GiB, 0x7fffffff},
		{"2 GiB guest, 896 MiB limit of older kernels", 2 * memory.GiB, 0x37ffffff},
		{"limit above the device hole", 4 * memory.GiB, 0xffffffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ram := newRAM(t, tc.ram)
			im := defaultImage()
			im.initrdAddrMax = tc.addrMax
			initrd := make([]byte, 3*pageSize+5)
			e := load(t, ram, Config{Kernel: im.parse(t), Initrd: bytes.NewReader(initrd)})
			top := min(uint64(tc.addrMax)+1, uint64(ram.LowEnd()))
			if uint64(e.InitrdEnd) > top || top-uint64(e.InitrdEnd) >= pageSize || e.InitrdStart%pageSize != 0 {
				t.Errorf("initrd at [%v, %v), want it page aligned ending within a page below %#x", e.InitrdStart, e.InitrdEnd, top)
			}
			if _, err := ram.Slice(e.InitrdStart, uint64(len(initrd))); err != nil {
				t.Errorf("initrd is not in RAM: %v", err)
			}
		})
	}
}

func TestLoadNonRelocatableKernelAtOneMiB(t *testing.T) {
	ram := newRAM(t, 64*memory.MiB)
	im := defaultImage()
	im.relocatable = false
	e := load(t, ram, Config{Kernel: im.parse(t)})
	if e.KernelStart != lowKernel || e.RIP != uint64(lowKernel)+0x200 {
		t.Errorf("non-relocatable kernel at %v with RIP %#x, want 1 MiB and 1 MiB+0x200", e.KernelStart, e.RIP)
	}
}

func TestLoadAlignsPrefAddress(t *testing.T) {
	ram := newRAM(t, 64*memory.MiB)
	im := defaultImage()
	im.prefAddress = 0x1000001
	e := load(t, ram, Config{Kernel: im.parse(t)})
	if e.KernelStart != 0x1200000 {
		t.Errorf("kernel with pref_address %#x at %v, want it rounded up to kernel_alignment: 0x1200000", im.prefAddress, e.KernelStart)
	}
}

func TestLoadNoRSDPForOldProtocols(t *testing.T) {
	ram := newRAM(t, 64*memory.MiB)
	im := defaultImage()
	im.version = 0x020d
	e := load(t, ram, Config{Kernel: im.parse(t), RSDP: 0xe0000})
	if got := u64(t, ram, e.ZeroPage+zpACPIRSDPAddr); got != 0 {
		t.Errorf("acpi_rsdp_addr = %#x for protocol 2.13, want 0: the field came with 2.14", got)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ram    uint64
		image  func(*image)
		cfg    Config
		target error
		says   string
	}{
		{"kernel does not fit", 16 * memory.MiB, func(im *image) {}, Config{}, ErrDoesNotFit, "--memory"},
		{"initrd does not fit", 32 * memory.MiB, func(im *image) {}, Config{Initrd: bytes.NewReader(make([]byte, 9*memory.MiB))}, ErrDoesNotFit, "initrd"},
		{"initrd limit below the kernel", 64 * memory.MiB, func(im *image) { im.initrdAddrMax = 20 << 20 }, Config{Initrd: bytes.NewReader(make([]byte, 1))}, ErrDoesNotFit, "initrd"},
		{"command line too long", 64 * memory.MiB, func(im *image) { im.cmdlineSize = 10 }, Config{Cmdline: "console=ttyS0"}, ErrDoesNotFit, "at most 10"},
		// A kernel may claim any cmdline_size; the line must still end
		// below the EBDA, where the ACPI tables are.
		{"command line past the EBDA", 64 * memory.MiB, func(im *image) { im.cmdlineSize = 0xffffffff },
			Config{Cmdline: strings.Repeat("x", int(memory.EBDAStart-cmdlineAddr))}, ErrDoesNotFit, "command line"},
		// pref_address rounded up to kernel_alignment must not wrap to 0
		// and put the kernel over the zero page.
		{"pref_address wraps when aligned", 64 * memory.MiB, func(im *image) { im.prefAddress = ^uint64(0) - 0xfff },
			Config{}, ErrDoesNotFit, "kernel"},
		{"pref_address plus init_size wraps", 64 * memory.MiB, func(im *image) { im.prefAddress = ^uint64(0) - 0x3fffff; im.kernelAlign = 0 },
			Config{}, ErrDoesNotFit, "kernel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ram := newRAM(t, tc.ram)
			im := defaultImage()
			tc.image(&im)
			cfg := tc.cfg
			cfg.Kernel = im.parse(t)
			e, err := Load(ram, cfg)
			if !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Load = %+v, %v; want an error wrapping %q that says %q", e, err, tc.target, tc.says)
			}
		})
	}
}

// translate walks the guest's 4-level page tables from cr3 as the MMU would.
func translate(t *testing.T, ram *memory.RAM, cr3, va uint64) (uint64, bool) {
	t.Helper()
	table := cr3 &^ 0xfff
	for level, shift := range []uint{39, 30, 21} {
		pte := u64(t, ram, memory.GuestAddress(table+8*(va>>shift&0x1ff)))
		if pte&pagePresent == 0 || pte&pageWrite == 0 {
			return 0, false
		}
		if level == 2 {
			if pte&pageHuge == 0 {
				t.Fatalf("PD entry %#x for %#x is not a 2 MiB page", pte, va)
			}
			return pte&^(hugePageSize-1)&^(1<<63) | va&(hugePageSize-1), true
		}
		table = pte &^ 0xfff
	}
	panic("unreachable")
}

func TestLoadIdentityMapsFourGiB(t *testing.T) {
	ram := newRAM(t, 64*memory.MiB)
	e := load(t, ram, Config{Kernel: defaultImage().parse(t)})
	for _, va := range []uint64{0, uint64(e.ZeroPage), uint64(e.CmdlineAddr), e.RIP, uint64(e.KernelEnd) - 1, 3 << 30, 4<<30 - 1} {
		pa, ok := translate(t, ram, e.CR3, va)
		if !ok || pa != va {
			t.Errorf("virtual %#x maps to %#x (present %v), want identity", va, pa, ok)
		}
	}
	if _, ok := translate(t, ram, e.CR3, 4<<30); ok {
		t.Error("4 GiB is mapped; the tables cover only the first 4 GiB")
	}
}

// descriptor decodes a GDT entry into the fields KVM's segment carries.
func descriptor(d uint64) Segment {
	access, flags := uint8(d>>40), uint8(d>>52)
	return Segment{
		Base:  d>>16&0xffffff | d>>56<<24,
		Limit: uint32(d&0xffff | d>>48&0xf<<16),
		Type:  access & 0xf, S: access >> 4 & 1, DPL: access >> 5 & 3, Present: access >> 7,
		L: flags >> 1 & 1, DB: flags >> 2 & 1, G: flags >> 3 & 1,
	}
}

func TestLoadEntryStateMatchesGDT(t *testing.T) {
	ram := newRAM(t, 64*memory.MiB)
	e := load(t, ram, Config{Kernel: defaultImage().parse(t)})
	if e.CR0&(cr0PE|cr0PG) != cr0PE|cr0PG || e.CR4&cr4PAE == 0 || e.EFER&(eferLME|eferLMA) != eferLME|eferLMA {
		t.Errorf("CR0 %#x CR4 %#x EFER %#x: want protected mode, paging, PAE and long mode active", e.CR0, e.CR4, e.EFER)
	}
	if e.CR3 != uint64(pml4Addr) || e.RFLAGS != 2 {
		t.Errorf("CR3 %#x RFLAGS %#x, want %#x and 2", e.CR3, e.RFLAGS, uint64(pml4Addr))
	}
	// The boot protocol wants __BOOT_CS at 0x10 and __BOOT_DS at 0x18.
	if e.CS.Selector != 0x10 || e.DS.Selector != 0x18 {
		t.Errorf("CS %#x DS %#x, want 0x10 and 0x18", e.CS.Selector, e.DS.Selector)
	}
	if e.CS.L != 1 || e.CS.DB != 0 {
		t.Errorf("CS %+v is not a 64-bit code segment", e.CS)
	}
	// A 64-bit TSS descriptor is 16 bytes.
	if int(e.GDTLimit)+1 < int(e.TR.Selector)+16 {
		t.Errorf("GDT limit %#x does not cover the TSS descriptor at %#x", e.GDTLimit, e.TR.Selector)
	}
	if gdtEnd := e.GDTBase + uint64(e.GDTLimit); e.IDTBase <= gdtEnd && e.GDTBase <= e.IDTBase+uint64(e.IDTLimit) {
		t.Errorf("IDT [%#x, +%d] overlaps GDT [%#x, %#x]", e.IDTBase, e.IDTLimit, e.GDTBase, gdtEnd)
	}
	for _, seg := range []Segment{e.CS, e.DS, e.TR} {
		d := descriptor(u64(t, ram, memory.GuestAddress(e.GDTBase)+memory.GuestAddress(seg.Selector)))
		d.Selector = seg.Selector
		if d.G == 1 {
			d.Limit = d.Limit<<12 | 0xfff
		}
		if d != seg {
			t.Errorf("GDT entry %#x decodes to %+v, entry state has %+v", seg.Selector, d, seg)
		}
	}
	if u64(t, ram, memory.GuestAddress(e.IDTBase)) != 0 || e.IDTLimit != 7 {
		t.Errorf("IDT at %#x limit %d is not one empty entry", e.IDTBase, e.IDTLimit)
	}
	if e.RSP == 0 || e.RSP >= uint64(pml4Addr) || e.RSP <= uint64(e.ZeroPage)+zeroPageSize {
		t.Errorf("RSP %#x is not between the zero page and the page tables", e.RSP)
	}
}

func TestLoadDebianKernel(t *testing.T) {
	paths := []string{debianKernel(t, "the synthetic images above cover Load")}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKernel(b)
	if err != nil {
		t.Fatal(err)
	}
	ram := newRAM(t, 256*memory.MiB)
	e := load(t, ram, Config{Kernel: k, Initrd: bytes.NewReader([]byte("070701")), Cmdline: "console=ttyS0"})
	if uint64(e.KernelStart) != k.PrefAddress || e.RIP != k.PrefAddress+0x200 {
		t.Errorf("Debian kernel at %v, RIP %#x; want its pref_address %#x and +0x200", e.KernelStart, e.RIP, k.PrefAddress)
	}
}
