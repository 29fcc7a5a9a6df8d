package boot

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/govmm/govmm/memory"
)

// PVH boot (xen/include/public/arch-x86/hvm/start_info.h, and Linux's
// arch/x86/platform/pvh): the kernel is entered in 32-bit protected mode
// with paging off at its PVH entry, EBX pointing at an hvm_start_info that
// gives the command line, the initrd as a module, the memory map and the
// ACPI RSDP. No decompressor runs: the ELF kernel is already in place.
const (
	startInfoMagic   = 0x336ec578
	startInfoVersion = 1 // version 1 adds the memory map, which Linux needs under KVM
	startInfoSize    = 56
	modlistEntrySize = 32
	memmapEntrySize  = 24

	startInfoAddr = zeroPageAddr // the zero page is the bzImage path's; PVH uses its place
	modlistAddr   = startInfoAddr + startInfoSize
	memmapAddr    = modlistAddr + modlistEntrySize
)

// hvm_start_info field offsets.
const (
	siMagic         = 0
	siVersion       = 4
	siNrModules     = 12
	siModlistPaddr  = 16
	siCmdlinePaddr  = 24
	siRSDPPaddr     = 32
	siMemmapPaddr   = 40
	siMemmapEntries = 48
)

// gdtCode32 is the 32-bit entry's code descriptor: flat 4 GiB,
// execute/read, default operand size 32 bits; data and TSS are the
// bzImage entry's.
const gdtCode32 = 0x00cf9b000000ffff

// PVHConfig is what LoadPVH puts in guest RAM.
type PVHConfig struct {
	Kernel  *Vmlinux
	Initrd  Image // may be nil
	Cmdline string
	RSDP    memory.GuestAddress // ACPI root pointer; 0 if none
}

// LoadPVH writes the kernel's segments, the initrd, the command line, the
// start info and a GDT into ram and returns the entry state.
func LoadPVH(ram *memory.RAM, cfg PVHConfig) (*Entry, error) {
	e := &Entry{ZeroPage: startInfoAddr, CmdlineAddr: cmdlineAddr}
	start, end, err := checkSegments(cfg.Kernel.Segments, ram.LowEnd())
	if err != nil {
		return nil, err
	}
	e.KernelStart, e.KernelEnd = start, end
	// Guest RAM is fresh anonymous memory: the zeroes past each segment's
	// file bytes (its .bss) are there already, and writing them would only
	// make the host back pages the guest may never touch.
	for _, s := range cfg.Kernel.Segments {
		if err := readInto(ram, memory.GuestAddress(s.Addr), s.Data); err != nil {
			return nil, fmt.Errorf("load kernel segment at %#x: %w", s.Addr, err)
		}
	}
	if cfg.Initrd != nil && cfg.Initrd.Size() > 0 {
		size := uint64(cfg.Initrd.Size())
		if e.InitrdStart, err = initrdAddress(uint64(ram.LowEnd()), size, e.KernelEnd, ram.LowEnd()); err != nil {
			return nil, err
		}
		e.InitrdEnd = e.InitrdStart + memory.GuestAddress(size)
		if err := readInto(ram, e.InitrdStart, cfg.Initrd); err != nil {
			return nil, fmt.Errorf("load initrd: %w", err)
		}
	}
	if err := writeCmdline(ram, maxPVHCmdline, cfg.Cmdline); err != nil {
		return nil, err
	}
	if err := writeStartInfo(ram, cfg, e); err != nil {
		return nil, err
	}
	if err := writeGDT(ram, gdtCode32); err != nil {
		return nil, err
	}
	setPVHEntryState(e, cfg.Kernel.Entry)
	return e, nil
}

// maxPVHCmdline is Linux's COMMAND_LINE_SIZE on x86 less its NUL: a PVH
// kernel has no setup header to say its own.
const maxPVHCmdline = 2047

// checkSegments checks that every segment lies in low RAM above 1 MiB
// (below it are the loader's own structures) and that none overlaps
// another, and returns where the kernel starts and ends.
func checkSegments(segs []LoadSegment, lowEnd memory.GuestAddress) (memory.GuestAddress, memory.GuestAddress, error) {
	sorted := append([]LoadSegment(nil), segs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Addr < sorted[j].Addr })
	var prevEnd uint64
	for i, s := range sorted {
		end := s.Addr + s.MemSize
		switch {
		case end < s.Addr:
			return 0, 0, fmt.Errorf("kernel segment at %#x of %d bytes runs past the address space", s.Addr, s.MemSize)
		case s.Addr < uint64(lowKernel):
			return 0, 0, fmt.Errorf("kernel segment at %#x is below 1 MiB, where the loader's tables are", s.Addr)
		case end > uint64(lowEnd):
			return 0, 0, fmt.Errorf("kernel segment [%#x, %#x) %w below the device hole at %v: give more --memory", s.Addr, end, ErrDoesNotFit, lowEnd)
		case i > 0 && s.Addr < prevEnd:
			return 0, 0, fmt.Errorf("kernel segments overlap at %#x", s.Addr)
		}
		prevEnd = end
	}
	return memory.GuestAddress(sorted[0].Addr), memory.GuestAddress(prevEnd), nil
}

func writeStartInfo(ram *memory.RAM, cfg PVHConfig, e *Entry) error {
	le := binary.LittleEndian
	si := make([]byte, startInfoSize)
	le.PutUint32(si[siMagic:], startInfoMagic)
	le.PutUint32(si[siVersion:], startInfoVersion)
	le.PutUint64(si[siCmdlinePaddr:], uint64(cmdlineAddr))
	le.PutUint64(si[siRSDPPaddr:], uint64(cfg.RSDP))
	if e.InitrdEnd > e.InitrdStart {
		mod := make([]byte, modlistEntrySize) // paddr, size, cmdline_paddr (none), reserved
		le.PutUint64(mod, uint64(e.InitrdStart))
		le.PutUint64(mod[8:], uint64(e.InitrdEnd-e.InitrdStart))
		if err := ram.WriteAt(mod, modlistAddr); err != nil {
			return err
		}
		le.PutUint32(si[siNrModules:], 1)
		le.PutUint64(si[siModlistPaddr:], uint64(modlistAddr))
	}
	e820 := ram.E820()
	if room := (uint64(stackTop) - uint64(memmapAddr)) / memmapEntrySize; uint64(len(e820)) > room {
		return fmt.Errorf("memory map of %d entries exceeds the start info's room for %d", len(e820), room)
	}
	table := make([]byte, len(e820)*memmapEntrySize)
	for i, r := range e820 {
		b := table[i*memmapEntrySize:]
		le.PutUint64(b, uint64(r.Addr))
		le.PutUint64(b[8:], r.Size)
		le.PutUint32(b[16:], uint32(r.Type)) // E820 types are PVH's memory map types
	}
	if err := ram.WriteAt(table, memmapAddr); err != nil {
		return err
	}
	le.PutUint64(si[siMemmapPaddr:], uint64(memmapAddr))
	le.PutUint32(si[siMemmapEntries:], uint32(len(e820)))
	return ram.WriteAt(si, startInfoAddr)
}

// setPVHEntryState is the PVH ABI's: 32-bit protected mode, paging off,
// flat 4 GiB code and data segments, a busy 32-bit TSS, EBX at the start
// info. The kernel loads its own GDT and stack before it relies on ours.
func setPVHEntryState(e *Entry, entry uint32) {
	e.RIP = uint64(entry)
	e.RBX = uint64(startInfoAddr)
	e.RFLAGS = 2
	e.CR0 = cr0PE | cr0ET | cr0NE
	setFlatSegments(e, Segment{Limit: 0xffffffff, Selector: selCode, Type: 0xb, Present: 1, DB: 1, S: 1, G: 1})
}
