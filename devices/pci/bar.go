package pci

import (
	"fmt"
	"math/bits"
)

const numBARs = 6

// BARKind says what a base address register decodes (PCI 3.0 §6.2.5.1).
type BARKind uint8

const (
	BARMem32 BARKind = iota + 1 // 32-bit memory, anywhere below 4 GiB
	BARMem64                    // 64-bit memory; takes this slot and the next
	BARIO                       // I/O ports
)

// Low bits of a BAR (PCI 3.0 §6.2.5.1, figures 6-5 and 6-6); read-only.
const (
	barIOSpace      = 1 << 0
	barMem64        = 2 << 1
	barPrefetchable = 1 << 3
	barMemTypeMask  = 0xf
	barIOTypeMask   = 0x3

	// x86 has 64 KiB of ports, so the upper 16 bits of an I/O BAR are
	// hardwired to zero, as for a device that decodes only 16 address bits.
	ioAddrMask = 0xfffc

	minMemBAR = 16
	minIOBAR  = 4
	maxIOBAR  = 256 // PCI 3.0 §6.2.5.1: at most 256 bytes per I/O BAR
)

// BAR is one base address register as the composition root sets it up.
type BAR struct {
	Kind         BARKind
	Addr         uint64 // guest-physical address or port; a multiple of Size
	Size         uint64 // a power of two: at least 16 for memory, 4 to 256 for I/O
	Prefetchable bool   // memory only
}

type barState struct {
	BAR        // Addr is the address the owner last heard of
	upper bool // this slot holds the upper half of the 64-bit BAR below it
}

// SetBAR sets up BAR i (i+1 too for a 64-bit BAR) at b.Addr. The guest sizes
// it by writing all ones and reading back the size mask, and may move it.
func (c *ConfigSpace) SetBAR(i int, b BAR) error {
	if err := b.check(i); err != nil {
		return fmt.Errorf("BAR %d (%#x bytes at %#x): %w", i, b.Size, b.Addr, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bars[i].Kind != 0 || c.bars[i].upper || b.Kind == BARMem64 && c.bars[i+1] != (barState{}) {
		return fmt.Errorf("BAR %d: slot already used: %w", i, ErrBadBAR)
	}
	c.bars[i] = barState{BAR: b}
	off := regBAR0 + 4*i
	mask := ^(b.Size - 1)
	switch b.Kind {
	case BARIO:
		le.PutUint32(c.regs[off:], uint32(b.Addr)|barIOSpace)
		le.PutUint32(c.wmask[off:], uint32(mask)&ioAddrMask)
		return nil
	case BARMem64:
		c.bars[i+1] = barState{upper: true}
		le.PutUint32(c.regs[off+4:], uint32(b.Addr>>32))
		le.PutUint32(c.wmask[off+4:], uint32(mask>>32))
	}
	le.PutUint32(c.regs[off:], uint32(b.Addr)|b.typeBits())
	le.PutUint32(c.wmask[off:], uint32(mask)&^barMemTypeMask)
	return nil
}

// check validates b for slot i against what PCI and x86 allow.
func (b BAR) check(i int) error {
	limit := uint64(1) << 32
	minSize, maxSize, slots := uint64(minMemBAR), uint64(1)<<31, 1
	switch b.Kind {
	case BARMem32:
	case BARMem64:
		limit, maxSize, slots = 0, 1<<63, 2 // limit 0: only overflow bounds it
	case BARIO:
		limit, minSize, maxSize = 1<<16, minIOBAR, maxIOBAR
	default:
		return fmt.Errorf("unknown kind %d: %w", b.Kind, ErrBadBAR)
	}
	switch {
	case i < 0 || i+slots > numBARs:
		return fmt.Errorf("no such slot: %w", ErrBadBAR)
	case bits.OnesCount64(b.Size) != 1 || b.Size < minSize || b.Size > maxSize:
		return fmt.Errorf("size must be a power of two from %#x to %#x: %w", minSize, maxSize, ErrBadBAR)
	case b.Addr&(b.Size-1) != 0:
		return fmt.Errorf("address must be a multiple of the size: %w", ErrBadBAR)
	case b.Addr+b.Size < b.Addr || limit != 0 && b.Addr+b.Size > limit:
		return fmt.Errorf("range runs past %#x: %w", limit-1, ErrBadBAR)
	case b.Prefetchable && b.Kind == BARIO:
		return fmt.Errorf("an I/O BAR cannot be prefetchable: %w", ErrBadBAR)
	}
	return nil
}

func (b BAR) typeBits() uint32 {
	t := uint32(0)
	if b.Kind == BARMem64 {
		t |= barMem64
	}
	if b.Prefetchable {
		t |= barPrefetchable
	}
	return t
}

// BAR returns BAR i as last reported to the owner; false if i is not the
// first slot of a BAR.
func (c *ConfigSpace) BAR(i int) (BAR, bool) {
	if i < 0 || i >= numBARs {
		return BAR{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bars[i].BAR, c.bars[i].Kind != 0
}

// barAddr decodes the address BAR i's registers hold now.
func (c *ConfigSpace) barAddr(i int) uint64 {
	off := regBAR0 + 4*i
	lo := uint64(le.Uint32(c.regs[off:]))
	switch c.bars[i].Kind {
	case BARIO:
		return lo & ioAddrMask
	case BARMem64:
		return lo&^barMemTypeMask | uint64(le.Uint32(c.regs[off+4:]))<<32
	}
	return lo &^ barMemTypeMask
}

// barWritten decides whether a write of data at reg moved a BAR. Writing all
// ones is sizing (Linux's __pci_read_base), not a move: the registers then hold
// the size mask until the guest restores them. A 64-bit BAR moves when its
// upper half is written, as Linux and SeaBIOS write the lower half first; a
// move on the lower half alone would report a transient address.
func (c *ConfigSpace) barWritten(reg uint16, data []byte) (bar int, old, moved uint64, ok bool) {
	if reg < regBAR0 || reg >= regBAR0+4*numBARs || isAllOnes(data) {
		return 0, 0, 0, false
	}
	i := int(reg-regBAR0) / 4
	switch {
	case c.bars[i].upper:
		i--
	case c.bars[i].Kind == 0 || c.bars[i].Kind == BARMem64:
		return 0, 0, 0, false
	}
	b := &c.bars[i]
	moved = c.barAddr(i)
	if moved == b.Addr {
		return 0, 0, 0, false
	}
	old, b.Addr = b.Addr, moved
	return i, old, moved, true
}

func isAllOnes(data []byte) bool {
	for _, v := range data {
		if v != 0xff {
			return false
		}
	}
	return true
}
