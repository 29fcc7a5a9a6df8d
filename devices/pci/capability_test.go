package pci

import (
	"errors"
	"testing"
)

type capEntry struct {
	off uint16
	id  uint8
}

// walkCaps follows the list as Linux's pci_find_capability does, bounded.
func walkCaps(t *testing.T, f Function) []capEntry {
	t.Helper()
	if rd(f, regStatus, 2)&statusCapabilities == 0 {
		return nil
	}
	var out []capEntry
	for p := uint16(rd(f, regCapabilitiesPtr, 1)); p != 0 && len(out) < 48; {
		if p < headerSize || p&3 != 0 {
			t.Fatalf("capability pointer %#x is in the header or not dword aligned", p)
		}
		out = append(out, capEntry{p, uint8(rd(f, p, 1))})
		p = uint16(rd(f, p+1, 1))
	}
	return out
}

func TestCapabilityList(t *testing.T) {
	tests := []struct {
		name   string
		bodies [][]byte
		want   []capEntry
	}{
		{"none", nil, nil},
		{"one", [][]byte{make([]byte, 2)}, []capEntry{{0x40, 1}}},
		{"odd sizes are dword aligned", [][]byte{make([]byte, 1), make([]byte, 14), nil},
			[]capEntry{{0x40, 1}, {0x44, 2}, {0x54, 3}}},
		{"fills the space exactly", [][]byte{make([]byte, 190)}, []capEntry{{0x40, 1}}},
	}
	for _, tt := range tests {
		c := NewConfigSpace(virtioNet)
		for i, body := range tt.bodies {
			off, err := c.AddCapability(uint8(i+1), body)
			if err != nil || off != tt.want[i].off {
				t.Fatalf("%s: AddCapability #%d = %#x, %v; want %#x", tt.name, i, off, err, tt.want[i].off)
			}
		}
		got := walkCaps(t, c)
		if len(got) != len(tt.want) {
			t.Fatalf("%s: list %v, want %v", tt.name, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: entry %d = %+v, want %+v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

func TestCapabilityBodyAndSpace(t *testing.T) {
	c := NewConfigSpace(virtioNet)
	off, err := c.AddCapability(0x09, []byte{0x10, 0x01, 0x02, 0x03})
	if err != nil {
		t.Fatal(err)
	}
	if got := rd(c, off, 4); got != 0x0110_0009 {
		t.Errorf("capability dword 0 = %#x, want 0x01100009 (ID 9, next 0, body 10 01)", got)
	}
	if _, err := c.AddCapability(0x11, make([]byte, 190)); !errors.Is(err, ErrNoSpace) {
		t.Errorf("a capability past 256 bytes: err = %v, want ErrNoSpace", err)
	}
	if got := walkCaps(t, c); len(got) != 1 {
		t.Errorf("a failed AddCapability changed the list: %v", got)
	}
}

func TestSetWritable(t *testing.T) {
	c, _ := testFunction(t) // capabilities at 0x40 (16 bytes) and 0x50 (12 bytes)
	tests := []struct {
		name string
		reg  uint16
		n    int
		ok   bool
	}{
		{"body", 0x42, 2, true},
		{"whole body", 0x42, 14, true},
		{"capability ID and next", 0x40, 2, false},
		{"next pointer", 0x51, 1, false},
		{"straddles two capabilities", 0x4e, 4, false},
		{"header", 0x04, 2, false},
		{"past the list", 0x60, 1, false},
	}
	for _, tt := range tests {
		err := c.SetWritable(tt.reg, make([]byte, tt.n))
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrNotInCap) {
			t.Errorf("%s: SetWritable(%#x, %d bytes) = %v", tt.name, tt.reg, tt.n, err)
		}
	}
}
