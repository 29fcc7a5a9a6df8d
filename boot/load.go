package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/govmm/govmm/memory"
)

// Config is what Load puts in guest RAM.
type Config struct {
	Kernel  *Kernel
	Initrd  Image // may be nil
	Cmdline string
	RSDP    memory.GuestAddress // ACPI root pointer; 0 if none
}

// Segment describes a segment register the way kvm_segment does.
type Segment struct {
	Base                      uint64
	Limit                     uint32
	Selector                  uint16
	Type, Present, DPL, DB, S uint8
	L, G                      uint8
}

// Entry is the boot vCPU's state at the kernel's 64-bit entry point, and
// where the loader put things.
type Entry struct {
	RIP, RSP, RSI, RFLAGS uint64
	RBX                   uint64 // PVH: the start info
	CR0, CR3, CR4, EFER   uint64
	CS, DS, TR            Segment
	GDTBase               uint64
	GDTLimit              uint16
	IDTBase               uint64
	IDTLimit              uint16

	KernelStart, KernelEnd memory.GuestAddress // KernelEnd covers init_size
	InitrdStart, InitrdEnd memory.GuestAddress
	ZeroPage, CmdlineAddr  memory.GuestAddress
}

// Load writes the kernel, initrd, command line, zero page, GDT and page
// tables into ram and returns the entry state.
func Load(ram *memory.RAM, cfg Config) (*Entry, error) {
	k := cfg.Kernel
	e := &Entry{ZeroPage: zeroPageAddr, CmdlineAddr: cmdlineAddr}
	var err error
	if e.KernelStart, err = kernelAddress(k, ram.LowEnd()); err != nil {
		return nil, err
	}
	e.KernelEnd = e.KernelStart + memory.GuestAddress(k.InitSize)
	if err := readInto(ram, e.KernelStart, k.protected); err != nil {
		return nil, fmt.Errorf("load kernel: %w", err)
	}
	if cfg.Initrd != nil && cfg.Initrd.Size() > 0 {
		size := uint64(cfg.Initrd.Size())
		if e.InitrdStart, err = initrdAddress(uint64(k.InitrdAddrMax)+1, size, e.KernelEnd, ram.LowEnd()); err != nil {
			return nil, err
		}
		e.InitrdEnd = e.InitrdStart + memory.GuestAddress(size)
		if err := readInto(ram, e.InitrdStart, cfg.Initrd); err != nil {
			return nil, fmt.Errorf("load initrd: %w", err)
		}
	}
	if err := writeCmdline(ram, uint64(k.CmdlineSize), cfg.Cmdline); err != nil {
		return nil, err
	}
	if err := writeZeroPage(ram, k, cfg, e); err != nil {
		return nil, err
	}
	if err := writeGDT(ram, gdtCode); err != nil {
		return nil, err
	}
	if err := writePageTables(ram); err != nil {
		return nil, err
	}
	setEntryState(e)
	return e, nil
}

// readInto reads all of img into guest RAM at addr, straight into the
// mapping: a file's bytes pass through no buffer of govmm's. A file that
// shrank since its size was taken is an error, not a short image.
func readInto(ram *memory.RAM, addr memory.GuestAddress, img Image) error {
	dst, err := ram.Slice(addr, uint64(img.Size()))
	if err != nil {
		return err
	}
	n, err := img.ReadAt(dst, 0)
	if n == len(dst) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d of %d bytes: %w", n, len(dst), err)
}

// kernelAddress is where the protected-mode kernel goes: its preferred
// address when relocatable (aligned as it asks), else 1 MiB. The kernel
// decompresses in place, so init_size bytes from there must be RAM.
func kernelAddress(k *Kernel, lowEnd memory.GuestAddress) (memory.GuestAddress, error) {
	addr := uint64(lowKernel)
	if k.Relocatable && k.PrefAddress >= uint64(lowKernel) {
		addr = k.PrefAddress
		if a := uint64(k.KernelAlignment); a > 1 && a&(a-1) == 0 {
			addr = (addr + a - 1) &^ (a - 1) // wraps to 0 past the top
		}
	}
	end := addr + uint64(k.InitSize)
	if addr < uint64(lowKernel) || end < addr {
		return 0, fmt.Errorf("kernel %w: pref_address %#x with kernel_alignment %#x and init_size %#x runs past the address space",
			ErrDoesNotFit, k.PrefAddress, k.KernelAlignment, k.InitSize)
	}
	if end > uint64(lowEnd) {
		return 0, fmt.Errorf("kernel %w: it needs %d MiB from %#x to decompress but RAM below the device hole ends at %v: give more --memory",
			ErrDoesNotFit, (uint64(k.InitSize)+1<<20-1)>>20, addr, lowEnd)
	}
	return memory.GuestAddress(addr), nil
}

// initrdAddress puts the initrd as high as the kernel allows (below limit:
// a bzImage's initrd_addr_max plus one), page aligned, above the kernel's
// end (for a bzImage, its decompression area).
func initrdAddress(limit, size uint64, kernelEnd, lowEnd memory.GuestAddress) (memory.GuestAddress, error) {
	top := min(uint64(lowEnd), limit)
	if size > top || (top-size)&^(pageSize-1) < uint64(kernelEnd) {
		return 0, fmt.Errorf("initrd of %d MiB %w between the kernel's end at %v and %#x: give more --memory or a smaller initrd",
			size>>20, ErrDoesNotFit, kernelEnd, top)
	}
	return memory.GuestAddress((top - size) &^ (pageSize - 1)), nil
}

// writeCmdline writes the command line, which the kernel takes up to limit
// bytes long.
func writeCmdline(ram *memory.RAM, limit uint64, cmdline string) error {
	if uint64(len(cmdline)) > limit {
		return fmt.Errorf("command line of %d bytes %w: this kernel takes at most %d", len(cmdline), ErrDoesNotFit, limit)
	}
	// cmdline_size is the kernel's word; the room below the EBDA is ours.
	if room := uint64(memory.EBDAStart - cmdlineAddr); uint64(len(cmdline)) >= room {
		return fmt.Errorf("command line of %d bytes %w below the EBDA: at most %d", len(cmdline), ErrDoesNotFit, room-1)
	}
	return ram.WriteAt(append([]byte(cmdline), 0), cmdlineAddr)
}

func writeZeroPage(ram *memory.RAM, k *Kernel, cfg Config, e *Entry) error {
	zp := make([]byte, zeroPageSize)
	copy(zp[hdrStart:], k.header)
	le := binary.LittleEndian
	zp[offTypeOfLoader] = loaderUndefined
	zp[offLoadFlags] |= loadFlagCanUseHeap
	le.PutUint16(zp[offHeapEndPtr:], heapEnd)
	le.PutUint32(zp[offCmdLinePtr:], uint32(cmdlineAddr))
	le.PutUint32(zp[zpExtCmdLinePtr:], 0)
	le.PutUint32(zp[offRamdiskImage:], uint32(e.InitrdStart))
	le.PutUint32(zp[offRamdiskSize:], uint32(e.InitrdEnd-e.InitrdStart))
	le.PutUint32(zp[zpExtRamdiskImage:], uint32(e.InitrdStart>>32))
	le.PutUint32(zp[zpExtRamdiskSize:], uint32((e.InitrdEnd-e.InitrdStart)>>32))
	if cfg.RSDP != 0 && k.Version >= minRSDPVersion {
		le.PutUint64(zp[zpACPIRSDPAddr:], uint64(cfg.RSDP))
	}
	e820 := ram.E820()
	if len(e820) > e820MaxEntries {
		return fmt.Errorf("memory map of %d entries exceeds the zero page's %d", len(e820), e820MaxEntries)
	}
	zp[zpE820Entries] = uint8(len(e820))
	for i, r := range e820 {
		b := zp[zpE820Table+i*e820EntrySize:]
		le.PutUint64(b, uint64(r.Addr))
		le.PutUint64(b[8:], r.Size)
		le.PutUint32(b[16:], uint32(r.Type))
	}
	return ram.WriteAt(zp, zeroPageAddr)
}

// writeGDT writes the GDT with code as the code segment's descriptor: 64-bit
// for the bzImage's entry, 32-bit for PVH's.
func writeGDT(ram *memory.RAM, code uint64) error {
	gdt := make([]byte, gdtSize)
	le := binary.LittleEndian
	le.PutUint64(gdt[selCode:], code)
	le.PutUint64(gdt[selData:], gdtData)
	le.PutUint64(gdt[selTSS:], gdtTSS)
	if err := ram.WriteAt(gdt, gdtAddr); err != nil {
		return err
	}
	return ram.WriteAt(make([]byte, 8), idtAddr) // an empty IDT
}

// writePageTables identity-maps the first 4 GiB with 2 MiB pages: the 64-bit
// boot protocol wants the kernel, zero page and command line mapped.
func writePageTables(ram *memory.RAM) error {
	le := binary.LittleEndian
	if err := ram.WriteUint64(pml4Addr, uint64(pdptAddr)|pagePresent|pageWrite); err != nil {
		return err
	}
	pdpt := make([]byte, pageSize)
	pds := make([]byte, pdCount*pageSize)
	for i := 0; i < pdCount; i++ {
		le.PutUint64(pdpt[8*i:], uint64(pdAddr)+uint64(i*pageSize)|pagePresent|pageWrite)
	}
	for i := 0; i < pdCount*512; i++ {
		le.PutUint64(pds[8*i:], uint64(i)*hugePageSize|pagePresent|pageWrite|pageHuge)
	}
	if err := ram.WriteAt(pdpt, pdptAddr); err != nil {
		return err
	}
	return ram.WriteAt(pds, pdAddr)
}

func setEntryState(e *Entry) {
	e.RIP = uint64(e.KernelStart) + entry64Offset
	e.RSP = uint64(stackTop)
	e.RSI = uint64(zeroPageAddr)
	e.RFLAGS = 2 // bit 1 is reserved and always set
	// CD and NW from the reset state are cleared: the kernel decompresses
	// before it sets CR0 itself, and uncached that would crawl.
	e.CR0 = cr0PE | cr0ET | cr0NE | cr0PG
	e.CR3 = uint64(pml4Addr)
	e.CR4 = cr4PAE
	e.EFER = eferLME | eferLMA
	setFlatSegments(e, Segment{Limit: 0xffffffff, Selector: selCode, Type: 0xb, Present: 1, S: 1, L: 1, G: 1})
}

// setFlatSegments gives e the code segment cs (64- or 32-bit), flat 4 GiB
// data segments, the busy TSS and the GDT and empty IDT writeGDT lays out:
// all that the two entries share.
func setFlatSegments(e *Entry, cs Segment) {
	e.CS = cs
	e.DS = Segment{Limit: 0xffffffff, Selector: selData, Type: 0x3, Present: 1, DB: 1, S: 1, G: 1}
	e.TR = Segment{Limit: 0xffffffff, Selector: selTSS, Type: 0xb, Present: 1, G: 1}
	e.GDTBase, e.GDTLimit = uint64(gdtAddr), gdtSize-1
	e.IDTBase, e.IDTLimit = uint64(idtAddr), 7
}
