package pci

import (
	"encoding/binary"
	"testing"
)

func ecamOffset(bus, dev, fn uint8, reg uint16) uint64 {
	return uint64(bus)<<20 | uint64(dev)<<15 | uint64(fn)<<12 | uint64(reg)
}

func TestECAMReads(t *testing.T) {
	b := NewBus()
	f, _ := testFunction(t)
	if err := b.Add(3, f); err != nil {
		t.Fatal(err)
	}
	e := NewECAM(b)
	tests := []struct {
		name   string
		offset uint64
		n      int
		want   uint64
	}{
		{"host bridge IDs", ecamOffset(0, 0, 0, 0), 4, 0x0d57_8086},
		{"device 3 IDs", ecamOffset(0, 3, 0, 0), 4, 0x1041_1af4},
		{"device 3 class byte", ecamOffset(0, 3, 0, 0x0b), 1, 0x02},
		{"extended space reads as zero", ecamOffset(0, 3, 0, 0x100), 4, 0},
		{"end of extended space", ecamOffset(0, 3, 0, 0xffc), 4, 0},
		{"missing device", ecamOffset(0, 4, 0, 0), 4, 0xffff_ffff},
		{"missing function", ecamOffset(0, 3, 2, 0), 4, 0xffff_ffff},
		{"missing function, extended space", ecamOffset(0, 4, 0, 0x100), 4, 0xffff_ffff},
		{"bus 1", ecamOffset(1, 3, 0, 0), 4, 0xffff_ffff},
		{"past bus 255", 256 << 20, 4, 0xffff_ffff},
		{"8 bytes", ecamOffset(0, 3, 0, 0), 8, 0xffff_ffff_ffff_ffff},
		{"crossing a dword", ecamOffset(0, 3, 0, 2), 4, 0xffff_ffff},
		{"crossing into the next function", ecamOffset(0, 3, 0, 0xfff), 2, 0xffff},
	}
	for _, tt := range tests {
		buf := make([]byte, 8)
		e.Read(tt.offset, buf[:tt.n])
		if got := binary.LittleEndian.Uint64(buf); got != tt.want {
			t.Errorf("%s: %d bytes at %#x = %#x, want %#x", tt.name, tt.n, tt.offset, got, tt.want)
		}
	}
}

func TestECAMWrites(t *testing.T) {
	b := NewBus()
	f, moves := testFunction(t)
	if err := b.Add(3, f); err != nil {
		t.Fatal(err)
	}
	e := NewECAM(b)
	e.Write(ecamOffset(0, 3, 0, 0x10), []byte{0, 0, 0, 0xd0})
	if want := []move{{0, 0xc000_0000, 0xd000_0000}}; !equalMoves(*moves, want) {
		t.Errorf("relocations %v, want %v", *moves, want)
	}
	before := f.regs
	e.Write(ecamOffset(0, 3, 0, 0x13c), []byte{0x42}) // extended space: dropped, not aliased
	e.Write(ecamOffset(0, 3, 0, 0x10), make([]byte, 8))
	if f.regs != before {
		t.Error("a write to extended space or an 8-byte write changed the function")
	}
}
