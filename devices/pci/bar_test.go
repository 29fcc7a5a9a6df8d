package pci

import (
	"errors"
	"testing"
)

// linuxSize decodes a size as Linux's pci_size does: the lowest set bit of
// the read-back mask once the type bits are dropped.
func linuxSize(sz uint64, mask uint64) uint64 {
	sz &= mask
	return sz & -sz
}

// TestBARSizing sizes every BAR as Linux's __pci_read_base does: read the
// register, write all ones, read the size mask, restore.
func TestBARSizing(t *testing.T) {
	tests := []struct {
		name     string
		reg      uint16
		orig, sz uint32
	}{
		{"32-bit memory, 4 KiB", 0x10, 0xc000_0000, 0xffff_f000},
		{"I/O, 64 ports", 0x14, 0xc041, 0x0000_ffc1},
		{"64-bit prefetchable, 16 KiB, low", 0x18, 0x0000_000c, 0xffff_c00c},
		{"64-bit prefetchable, 16 KiB, high", 0x1c, 0x8, 0xffff_ffff},
		{"64-bit, 8 GiB, low", 0x20, 0x0000_0004, 0x0000_0004},
		{"64-bit, 8 GiB, high", 0x24, 0x10, 0xffff_fffe},
	}
	for _, tt := range tests {
		c, moves := testFunction(t)
		l := rd(c, tt.reg, 4)
		wr(c, tt.reg, 4, 0xffff_ffff)
		sz := rd(c, tt.reg, 4)
		wr(c, tt.reg, 4, l)
		if l != tt.orig || sz != tt.sz {
			t.Errorf("%s: BAR at %#x reads %#x, sizes to %#x; want %#x, %#x", tt.name, tt.reg, l, sz, tt.orig, tt.sz)
		}
		if got := rd(c, tt.reg, 4); got != l {
			t.Errorf("%s: after restore reads %#x, want %#x", tt.name, got, l)
		}
		if len(*moves) != 0 {
			t.Errorf("%s: sizing reported relocations %v", tt.name, *moves)
		}
	}
}

// TestBARSizeDecodesAsConfigured runs the whole 64-bit sizing sequence, both
// halves, and decodes the size as Linux would.
func TestBARSizeDecodesAsConfigured(t *testing.T) {
	c, _ := testFunction(t)
	probe := func(reg uint16) uint64 {
		l := rd(c, reg, 4)
		wr(c, reg, 4, 0xffff_ffff)
		defer wr(c, reg, 4, l)
		return uint64(rd(c, reg, 4))
	}
	for i, b := range testBARs {
		reg := uint16(regBAR0 + 4*i)
		var got uint64
		switch b.Kind {
		case 0:
			continue
		case BARIO:
			got = linuxSize(probe(reg), ioAddrMask)
		case BARMem32:
			got = linuxSize(probe(reg), 0xffff_fff0)
		case BARMem64:
			got = linuxSize(probe(reg)|probe(reg+4)<<32, ^uint64(0xf))
		}
		if got != b.Size {
			t.Errorf("BAR %d sizes to %#x, want %#x", i, got, b.Size)
		}
	}
}

func TestBARRelocation(t *testing.T) {
	type write struct {
		reg uint16
		n   int
		v   uint32
	}
	tests := []struct {
		name   string
		writes []write
		bar    int
		want   []move
		reads  uint32 // the BAR's first register afterwards
	}{
		{"32-bit memory", []write{{0x10, 4, 0xd000_0000}}, 0,
			[]move{{0, 0xc000_0000, 0xd000_0000}}, 0xd000_0000},
		{"32-bit memory, low bits masked", []write{{0x10, 4, 0xd000_0fff}}, 0,
			[]move{{0, 0xc000_0000, 0xd000_0000}}, 0xd000_0000},
		{"32-bit memory, by bytes", []write{{0x13, 1, 0xd0}}, 0,
			[]move{{0, 0xc000_0000, 0xd000_0000}}, 0xd000_0000},
		{"same address again", []write{{0x10, 4, 0xc000_0000}}, 0, nil, 0xc000_0000},
		{"I/O", []write{{0x14, 4, 0x1001}}, 1, []move{{1, 0xc040, 0x1000}}, 0x1001},
		{"I/O, upper 16 bits hardwired", []write{{0x14, 4, 0x1_2345}}, 1,
			[]move{{1, 0xc040, 0x2340}}, 0x2341},
		{"64-bit: upper half commits", []write{{0x18, 4, 0x1_0000}, {0x1c, 4, 0x9}}, 2,
			[]move{{2, 0x8_0000_0000, 0x9_0001_0000}}, 0x1_000c},
		{"64-bit: lower half alone waits", []write{{0x18, 4, 0x1_0000}}, 2, nil, 0x1_000c},
		{"64-bit: moved below 4 GiB", []write{{0x18, 4, 0xe000_0000}, {0x1c, 4, 0}}, 2,
			[]move{{2, 0x8_0000_0000, 0xe000_0000}}, 0xe000_000c},
		{"64-bit, 8 GiB: low bits read-only", []write{{0x20, 4, 0x1234_5678}, {0x24, 4, 0x13}}, 4,
			[]move{{4, 0x10_0000_0000, 0x12_0000_0000}}, 0x4},
		{"probe of the upper half is not a move", []write{{0x1c, 4, 0xffff_ffff}}, 2, nil, 0xc},
	}
	for _, tt := range tests {
		c, moves := testFunction(t)
		for _, w := range tt.writes {
			wr(c, w.reg, w.n, w.v)
		}
		if !equalMoves(*moves, tt.want) {
			t.Errorf("%s: relocations %v, want %v", tt.name, *moves, tt.want)
		}
		if got := rd(c, uint16(regBAR0+4*tt.bar), 4); got != tt.reads {
			t.Errorf("%s: BAR %d reads %#x, want %#x", tt.name, tt.bar, got, tt.reads)
		}
		if n := len(tt.want); n > 0 {
			if b, _ := c.BAR(tt.bar); b.Addr != tt.want[n-1].new {
				t.Errorf("%s: BAR(%d).Addr = %#x, want %#x", tt.name, tt.bar, b.Addr, tt.want[n-1].new)
			}
		}
	}
}

func equalMoves(a, b []move) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRelocateMayReadConfigSpace: the callback runs after the write, outside
// the lock, so the owner can look at the function.
func TestRelocateMayReadConfigSpace(t *testing.T) {
	c := NewConfigSpace(virtioNet)
	if err := c.SetBAR(0, BAR{Kind: BARMem32, Addr: 0xc000_0000, Size: 0x1000}); err != nil {
		t.Fatal(err)
	}
	var seen BAR
	c.OnRelocate(func(bar int, _, _ uint64) { seen, _ = c.BAR(bar) })
	wr(c, 0x10, 4, 0xd000_0000)
	if seen.Addr != 0xd000_0000 {
		t.Errorf("callback saw BAR 0 at %#x, want 0xd0000000", seen.Addr)
	}
}

// TestSetBARRejects tries each bad BAR on a function using slots 0, 2–3 and 5.
func TestSetBARRejects(t *testing.T) {
	tests := []struct {
		name string
		i    int
		b    BAR
	}{
		{"unknown kind", 1, BAR{Kind: 9, Size: 16}},
		{"negative slot", -1, BAR{Kind: BARMem32, Size: 16}},
		{"slot 6", 6, BAR{Kind: BARMem32, Size: 16}},
		{"64-bit in slot 5", 5, BAR{Kind: BARMem64, Size: 16}},
		{"size not a power of two", 1, BAR{Kind: BARMem32, Size: 0x3000}},
		{"size zero", 1, BAR{Kind: BARMem32}},
		{"memory smaller than 16", 1, BAR{Kind: BARMem32, Size: 8}},
		{"32-bit memory of 4 GiB", 1, BAR{Kind: BARMem32, Size: 1 << 32}},
		{"I/O of 512 ports", 1, BAR{Kind: BARIO, Size: 512}},
		{"I/O of 2 ports", 1, BAR{Kind: BARIO, Size: 2}},
		{"misaligned address", 1, BAR{Kind: BARMem32, Addr: 0x800, Size: 0x1000}},
		{"32-bit memory past 4 GiB", 1, BAR{Kind: BARMem32, Addr: 1 << 32, Size: 0x1000}},
		{"I/O past 0xffff", 1, BAR{Kind: BARIO, Addr: 0x10000, Size: 4}},
		{"64-bit wrapping", 4, BAR{Kind: BARMem64, Addr: 1 << 63, Size: 1 << 63}},
		{"prefetchable I/O", 1, BAR{Kind: BARIO, Size: 4, Prefetchable: true}},
		{"slot in use", 0, BAR{Kind: BARMem32, Size: 16}},
		{"upper half of a 64-bit BAR", 3, BAR{Kind: BARMem32, Size: 16}},
		{"64-bit over a used slot", 4, BAR{Kind: BARMem64, Size: 16}},
	}
	for _, tt := range tests {
		c := NewConfigSpace(virtioNet)
		if err := c.SetBAR(0, testBARs[0]); err != nil {
			t.Fatal(err)
		}
		if err := c.SetBAR(2, testBARs[2]); err != nil {
			t.Fatal(err)
		}
		if err := c.SetBAR(5, BAR{Kind: BARIO, Size: 4}); err != nil {
			t.Fatal(err)
		}
		if err := c.SetBAR(tt.i, tt.b); !errors.Is(err, ErrBadBAR) {
			t.Errorf("%s: SetBAR(%d, %+v) = %v, want ErrBadBAR", tt.name, tt.i, tt.b, err)
		}
	}
}

func TestBARAccessor(t *testing.T) {
	c, _ := testFunction(t)
	for i, want := range testBARs {
		got, ok := c.BAR(i)
		if ok != (want.Kind != 0) || got != want {
			t.Errorf("BAR(%d) = %+v, %v; want %+v", i, got, ok, want)
		}
	}
	if _, ok := c.BAR(6); ok {
		t.Error("BAR(6) exists")
	}
}
