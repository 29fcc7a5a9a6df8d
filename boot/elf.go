package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNoPVH: an ELF kernel without the PVH entry point.
var ErrNoPVH = errors.New("has no PVH entry point (no XEN_ELFNOTE_PHYS32_ENTRY note): build it with CONFIG_PVH=y, or give its bzImage")

// The PVH entry point's ELF note (xen/include/public/elfnote.h): owner
// "Xen", type XEN_ELFNOTE_PHYS32_ENTRY, and the 32-bit physical address
// of the entry as its value (Linux writes it as a 64-bit word).
const (
	xenNoteOwner  = "Xen"
	xenNotePhys32 = 18
	maxNoteBytes  = 1 << 20 // far more than any kernel's notes
	maxSegments   = 64      // a vmlinux has a handful
	elfMagic      = "\x7fELF"
)

// Vmlinux is an uncompressed ELF kernel with a PVH entry point.
type Vmlinux struct {
	Entry    uint32        // the PVH entry's physical address
	Segments []LoadSegment // what goes into guest RAM, by physical address
}

// LoadSegment is one PT_LOAD segment: FileSize bytes of the file from Data,
// at guest-physical Addr, followed by zeroes up to MemSize.
type LoadSegment struct {
	Addr, MemSize uint64
	Data          Image
}

// IsELF tells an ELF file from a bzImage by its first bytes.
func IsELF(head []byte) bool { return bytes.HasPrefix(head, []byte(elfMagic)) }

// ReadVmlinux checks f as a 64-bit x86 ELF kernel and finds its PVH entry
// and its PT_LOAD segments. Addresses are checked against RAM by LoadPVH.
func ReadVmlinux(f Image) (*Vmlinux, error) {
	if err := checkHeaderTables(f); err != nil {
		return nil, fmt.Errorf("not an ELF kernel: %w", err)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("not an ELF kernel: %w", err)
	}
	switch {
	case ef.Class != elf.ELFCLASS64:
		return nil, fmt.Errorf("a %v ELF file: give a 64-bit x86 kernel", ef.Class)
	case ef.Machine != elf.EM_X86_64:
		return nil, fmt.Errorf("an ELF file for %v: give an x86-64 kernel", ef.Machine)
	case ef.Type != elf.ET_EXEC:
		return nil, fmt.Errorf("an ELF %v, not an executable kernel", ef.Type)
	}
	v := &Vmlinux{}
	found := false
	for _, p := range ef.Progs {
		switch p.Type {
		case elf.PT_NOTE:
			if p.Filesz > maxNoteBytes {
				return nil, fmt.Errorf("ELF note segment of %d bytes", p.Filesz)
			}
			if !inFile(p.Off, p.Filesz, f.Size()) {
				return nil, fmt.Errorf("ELF note segment: bytes %d+%d are past the file's end (%d): truncated?", p.Off, p.Filesz, f.Size())
			}
			entry, ok, err := pvhNote(p)
			if err != nil {
				return nil, err
			}
			if ok {
				v.Entry, found = entry, true
			}
		case elf.PT_LOAD:
			if p.Filesz > p.Memsz {
				return nil, fmt.Errorf("ELF segment at %#x holds %d bytes of file in %d of memory", p.Paddr, p.Filesz, p.Memsz)
			}
			if !inFile(p.Off, p.Filesz, f.Size()) {
				return nil, fmt.Errorf("ELF segment at %#x: bytes %d+%d are past the file's end (%d): truncated?", p.Paddr, p.Off, p.Filesz, f.Size())
			}
			if len(v.Segments) == maxSegments {
				return nil, fmt.Errorf("more than %d ELF segments to load", maxSegments)
			}
			v.Segments = append(v.Segments, LoadSegment{Addr: p.Paddr, MemSize: p.Memsz,
				Data: io.NewSectionReader(f, int64(p.Off), int64(p.Filesz))})
		}
	}
	if !found {
		return nil, ErrNoPVH
	}
	if len(v.Segments) == 0 {
		return nil, errors.New("an ELF kernel with nothing to load (no PT_LOAD segment)")
	}
	return v, nil
}

// inFile tells whether n bytes at off lie within a file of size bytes.
func inFile(off, n uint64, size int64) bool {
	return off <= uint64(size) && n <= uint64(size)-off
}

// checkHeaderTables refuses an ELF file whose program or section header
// table runs past its end, before debug/elf reads it: elf.NewFile
// allocates the size the ELF header states, up to 10 MiB a table, before
// its read comes short. Such a file fails there too; only the cost and
// the error differ. Anything else is left to elf.NewFile to judge.
func checkHeaderTables(f Image) error {
	var h [64]byte // Elf64_Ehdr
	if _, err := f.ReadAt(h[:], 0); err != nil || !IsELF(h[:]) || elf.Class(h[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(h[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	phoff, phentsize, phnum := bo.Uint64(h[32:]), uint64(bo.Uint16(h[54:])), uint64(bo.Uint16(h[56:]))
	shoff, shentsize, shnum := bo.Uint64(h[40:]), uint64(bo.Uint16(h[58:])), uint64(bo.Uint16(h[60:]))
	if !tableInFile(phoff, phnum, phentsize, f.Size()) {
		return fmt.Errorf("its %d program headers at %d are past the file's end (%d): truncated?", phnum, phoff, f.Size())
	}
	if shoff > 0 && shnum == 0 {
		// More than 0xff00 sections: section 0's sh_size says how many
		// (ELF gABI, "Sections").
		var sh0 [64]byte // Elf64_Shdr
		if _, err := f.ReadAt(sh0[:], int64(min(shoff, 1<<62))); err != nil {
			return nil
		}
		shnum = bo.Uint64(sh0[32:])
	}
	if !tableInFile(shoff, shnum, shentsize, f.Size()) {
		return fmt.Errorf("its %d section headers at %d are past the file's end (%d): truncated?", shnum, shoff, f.Size())
	}
	return nil
}

// tableInFile tells whether num entries of entsize bytes at off lie
// within a file of size bytes.
func tableInFile(off, num, entsize uint64, size int64) bool {
	return num == 0 || entsize == 0 || num <= uint64(size)/entsize && inFile(off, num*entsize, size)
}

// pvhNote looks for the PVH entry among one PT_NOTE segment's notes,
// which lie within the file.
func pvhNote(p *elf.Prog) (uint32, bool, error) {
	b := make([]byte, p.Filesz)
	if _, err := p.ReadAt(b, 0); err != nil {
		return 0, false, fmt.Errorf("read ELF notes: %w", err)
	}
	le := binary.LittleEndian
	for len(b) >= 12 {
		nameSz, descSz, typ := le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:])
		nameEnd := 12 + align4(uint64(nameSz))
		descEnd := nameEnd + align4(uint64(descSz))
		if descEnd > uint64(len(b)) {
			return 0, false, errors.New("an ELF note runs past its segment")
		}
		name := string(bytes.TrimRight(b[12:12+nameSz], "\x00"))
		desc := b[nameEnd : nameEnd+uint64(descSz)]
		if name == xenNoteOwner && typ == xenNotePhys32 {
			switch len(desc) {
			case 4:
				return le.Uint32(desc), true, nil
			case 8:
				e := le.Uint64(desc)
				if e > 0xffffffff {
					return 0, false, fmt.Errorf("PVH entry %#x is above 4 GiB: it must be a 32-bit physical address", e)
				}
				return uint32(e), true, nil
			}
			return 0, false, fmt.Errorf("PVH entry note of %d bytes", len(desc))
		}
		b = b[descEnd:]
	}
	return 0, false, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }
