package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/govmm/govmm/memory"
)

// elfSeg is a PT_LOAD segment of a synthetic vmlinux.
type elfSeg struct {
	paddr, memsz uint64
	data         []byte
}

// elfImage is a synthetic ELF kernel: what ReadVmlinux reads of a vmlinux.
type elfImage struct {
	class, machine byte // ELFCLASS64 = 2, EM_X86_64 = 62
	noteName       string
	noteType       uint32
	entry          []byte // the note's value: 4 or 8 bytes
	segs           []elfSeg
	truncate       int // bytes cut off the end
}

func vmlinuxImage() elfImage {
	return elfImage{class: 2, machine: 62, noteName: "Xen", noteType: xenNotePhys32,
		entry: binary.LittleEndian.AppendUint64(nil, 0x1000850),
		segs: []elfSeg{
			{paddr: 16 << 20, memsz: 3 << 20, data: bytes.Repeat([]byte("text"), 1000)},
			{paddr: 20 << 20, memsz: 1 << 20, data: bytes.Repeat([]byte("data"), 10)},
		}}
}

func (im elfImage) bytes() []byte {
	le := binary.LittleEndian
	const ehSize, phSize = 64, 56
	nph := len(im.segs) + 1
	var note []byte
	note = le.AppendUint32(note, uint32(len(im.noteName)+1))
	note = le.AppendUint32(note, uint32(len(im.entry)))
	note = le.AppendUint32(note, im.noteType)
	name := append([]byte(im.noteName), 0)
	for len(name)%4 != 0 {
		name = append(name, 0)
	}
	note = append(append(note, name...), im.entry...)
	off := uint64(ehSize + nph*phSize)
	b := make([]byte, off)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = im.class, 1, 1 // class, little-endian, version 1
	le.PutUint16(b[16:], 2)           // ET_EXEC
	le.PutUint16(b[18:], uint16(im.machine))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[32:], ehSize) // e_phoff
	le.PutUint16(b[52:], ehSize)
	le.PutUint16(b[54:], phSize)
	le.PutUint16(b[56:], uint16(nph))
	ph := func(i int, typ uint32, fileOff, paddr, filesz, memsz uint64) {
		p := b[ehSize+i*phSize:]
		le.PutUint32(p, typ)
		le.PutUint64(p[8:], fileOff)
		le.PutUint64(p[16:], paddr)
		le.PutUint64(p[24:], paddr)
		le.PutUint64(p[32:], filesz)
		le.PutUint64(p[40:], memsz)
	}
	ph(0, 4, uint64(len(b)), 0, uint64(len(note)), uint64(len(note))) // PT_NOTE
	b = append(b, note...)
	for i, s := range im.segs {
		ph(i+1, 1, uint64(len(b)), s.paddr, uint64(len(s.data)), s.memsz) // PT_LOAD
		b = append(b, s.data...)
	}
	return b[:len(b)-im.truncate]
}

func TestReadVmlinuxRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*elfImage)
		want string
	}{
		{"no PVH note", func(im *elfImage) { im.noteType = 17 }, "no PVH entry point"},
		{"a note of another owner", func(im *elfImage) { im.noteName = "Linux" }, "no PVH entry point"},
		{"32-bit ELF", func(im *elfImage) { im.class = 1 }, ""},
		{"another architecture", func(im *elfImage) { im.machine = 183 }, "give an x86-64 kernel"},
		{"entry above 4 GiB", func(im *elfImage) { im.entry = binary.LittleEndian.AppendUint64(nil, 1<<32) }, "above 4 GiB"},
		{"truncated", func(im *elfImage) { im.truncate = 100 }, "past the file's end"},
		{"file bytes beyond memory size", func(im *elfImage) { im.segs[0].memsz = 10 }, "bytes of file in"},
	} {
		im := vmlinuxImage()
		tc.edit(&im)
		_, err := ReadVmlinux(bytes.NewReader(im.bytes()))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadVmlinux = %v; want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	im := vmlinuxImage()
	im.noteType = 17
	if _, err := ReadVmlinux(bytes.NewReader(im.bytes())); !errors.Is(err, ErrNoPVH) {
		t.Errorf("without the note: %v, want ErrNoPVH", err)
	}
}

// An ELF header whose program or section header table runs past the
// file's end is refused before debug/elf allocates the table's size, as
// elf.NewFile would refuse it after.
func TestReadVmlinuxRefusesTablesPastTheEnd(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		name string
		edit func(b []byte)
	}{
		{"program headers", func(b []byte) { le.PutUint16(b[56:], 0xffff) }},
		{"program header size", func(b []byte) { le.PutUint16(b[54:], 0xffff) }},
		{"section headers", func(b []byte) { le.PutUint64(b[40:], 64); le.PutUint16(b[58:], 64); le.PutUint16(b[60:], 0xfff0) }},
		{"section headers counted in section 0", func(b []byte) {
			le.PutUint64(b[40:], 64+8)
			le.PutUint16(b[58:], 64)
			le.PutUint64(b[64+8+32:], 1<<40) // section 0's sh_size, over the program headers
		}},
	} {
		b := vmlinuxImage().bytes()
		tc.edit(b)
		if _, err := elf.NewFile(bytes.NewReader(b)); err == nil {
			t.Fatalf("%s: debug/elf reads the file: the test is wrong", tc.name)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadVmlinux(bytes.NewReader(b))
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "past the file's end") {
			t.Errorf("%s: ReadVmlinux = %v; want an error saying the table is past the file's end", tc.name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: allocated %d KiB for a %d-byte file", tc.name, n>>10, len(b))
		}
	}
}

func TestLoadPVHLaysOutKernelAndStartInfo(t *testing.T) {
	ram := newRAM(t, 256*memory.MiB)
	im := vmlinuxImage()
	v, err := ReadVmlinux(bytes.NewReader(im.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	initrd := bytes.Repeat([]byte("initrd!"), 1000)
	const cmdline = "console=ttyS0 quiet"
	e, err := LoadPVH(ram, PVHConfig{Kernel: v, Initrd: bytes.NewReader(initrd), Cmdline: cmdline, RSDP: 0xe0000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range im.segs {
		if got := read(t, ram, memory.GuestAddress(s.paddr), len(s.data)); !bytes.Equal(got, s.data) {
			t.Errorf("segment at %#x not in guest RAM", s.paddr)
		}
	}
	if e.KernelStart != 16<<20 || e.KernelEnd != 21<<20 {
		t.Errorf("kernel at [%v, %v), want [16 MiB, 21 MiB)", e.KernelStart, e.KernelEnd)
	}
	if e.InitrdStart < e.KernelEnd || !bytes.Equal(read(t, ram, e.InitrdStart, len(initrd)), initrd) {
		t.Errorf("initrd at %v (kernel ends %v) or its bytes wrong", e.InitrdStart, e.KernelEnd)
	}
	le := binary.LittleEndian
	si := read(t, ram, startInfoAddr, startInfoSize)
	for _, f := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"magic", uint64(le.Uint32(si[siMagic:])), startInfoMagic},
		{"version", uint64(le.Uint32(si[siVersion:])), 1},
		{"nr_modules", uint64(le.Uint32(si[siNrModules:])), 1},
		{"cmdline_paddr", le.Uint64(si[siCmdlinePaddr:]), uint64(cmdlineAddr)},
		{"rsdp_paddr", le.Uint64(si[siRSDPPaddr:]), 0xe0000},
		{"memmap_entries", uint64(le.Uint32(si[siMemmapEntries:])), uint64(len(ram.E820()))},
	} {
		if f.got != f.want {
			t.Errorf("start info %s = %#x, want %#x", f.name, f.got, f.want)
		}
	}
	mod := read(t, ram, memory.GuestAddress(le.Uint64(si[siModlistPaddr:])), modlistEntrySize)
	if le.Uint64(mod) != uint64(e.InitrdStart) || le.Uint64(mod[8:]) != uint64(len(initrd)) {
		t.Errorf("module 0 = [%#x, +%d), want the initrd [%v, +%d)", le.Uint64(mod), le.Uint64(mod[8:]), e.InitrdStart, len(initrd))
	}
	mm := read(t, ram, memory.GuestAddress(le.Uint64(si[siMemmapPaddr:])), len(ram.E820())*memmapEntrySize)
	for i, r := range ram.E820() {
		b := mm[i*memmapEntrySize:]
		if le.Uint64(b) != uint64(r.Addr) || le.Uint64(b[8:]) != r.Size || le.Uint32(b[16:]) != uint32(r.Type) {
			t.Errorf("memory map entry %d = % x, want %+v", i, b[:20], r)
		}
	}
	if got := string(read(t, ram, cmdlineAddr, len(cmdline)+1)); got != cmdline+"\x00" {
		t.Errorf("command line %q", got)
	}
	// The PVH ABI's entry: 32-bit protected mode, paging off, EBX at the start info.
	if e.RIP != 0x1000850 || e.RBX != uint64(startInfoAddr) || e.CR0&cr0PE == 0 || e.CR0&cr0PG != 0 ||
		e.EFER != 0 || e.CR4 != 0 || e.CS.L != 0 || e.CS.DB != 1 || e.DS.DB != 1 {
		t.Errorf("entry state %+v: want RIP at the PVH entry, EBX at the start info, 32-bit protected mode without paging", e)
	}
}

func TestLoadPVHRefusesBadSegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		segs []elfSeg
		ram  uint64
		want string
	}{
		{"overlapping", []elfSeg{{paddr: 16 << 20, memsz: 2 << 20}, {paddr: 17 << 20, memsz: 1 << 20}}, 256, "overlap"},
		{"below 1 MiB", []elfSeg{{paddr: 0x8000, memsz: 4096}}, 256, "below 1 MiB"},
		{"past RAM", []elfSeg{{paddr: 16 << 20, memsz: 64 << 20}}, 64, "does not fit"},
		{"wrapping", []elfSeg{{paddr: 16 << 20, memsz: ^uint64(0) - 1}}, 256, "past the address space"},
	} {
		im := vmlinuxImage()
		im.segs = tc.segs
		v, err := ReadVmlinux(bytes.NewReader(im.bytes()))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err = LoadPVH(newRAM(t, tc.ram*memory.MiB), PVHConfig{Kernel: v})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: LoadPVH = %v; want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}
