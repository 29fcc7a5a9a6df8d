package pci

import (
	"encoding/binary"
	"testing"
)

// rd reads n bytes at reg as a little-endian value, as a guest would.
func rd(f Function, reg uint16, n int) uint32 {
	b := make([]byte, 4)
	f.ReadConfig(reg, b[:n])
	return binary.LittleEndian.Uint32(b)
}

func wr(f Function, reg uint16, n int, v uint32) {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	f.WriteConfig(reg, b[:n])
}

// virtioNet is a function shaped like a modern virtio-net device.
var virtioNet = Header{
	VendorID: 0x1af4, DeviceID: 0x1041, RevisionID: 1, ClassCode: 0x020000,
	SubsystemVendorID: 0x1af4, SubsystemID: 0x0001, InterruptPin: 1, InterruptLine: 11,
}

type move struct {
	bar      int
	old, new uint64
}

// testFunction returns a function with BARs of every kind, two capabilities
// and a log of the relocations it reports.
func testFunction(t testing.TB) (*ConfigSpace, *[]move) {
	t.Helper()
	c := NewConfigSpace(virtioNet)
	for i, b := range testBARs {
		if b.Kind == 0 {
			continue
		}
		if err := c.SetBAR(i, b); err != nil {
			t.Fatalf("SetBAR(%d): %v", i, err)
		}
	}
	if _, err := c.AddCapability(0x09, []byte{14, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	off, err := c.AddCapability(0x11, []byte{0x01, 0x00, 0x04, 0, 0, 0, 0x05, 0x08, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetWritable(off+2, []byte{0x00, 0xc0}); err != nil { // MSI-X Enable and Function Mask
		t.Fatal(err)
	}
	var moves []move
	c.OnRelocate(func(bar int, old, new uint64) { moves = append(moves, move{bar, old, new}) })
	return c, &moves
}

// testBARs covers each kind: index → BAR, slot 3 being 2's upper half.
var testBARs = [numBARs]BAR{
	0: {Kind: BARMem32, Addr: 0xc000_0000, Size: 0x1000},
	1: {Kind: BARIO, Addr: 0xc040, Size: 0x40},
	2: {Kind: BARMem64, Addr: 0x8_0000_0000, Size: 0x4000, Prefetchable: true},
	4: {Kind: BARMem64, Addr: 0x10_0000_0000, Size: 0x2_0000_0000},
}
