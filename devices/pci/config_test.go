package pci

import "testing"

// TestHeaderAsLinuxScansIt reads the fields pci_setup_device reads.
func TestHeaderAsLinuxScansIt(t *testing.T) {
	c, _ := testFunction(t)
	tests := []struct {
		name string
		reg  uint16
		n    int
		want uint32
	}{
		{"vendor and device ID", 0x00, 4, 0x1041_1af4},
		{"vendor ID", 0x00, 2, 0x1af4},
		{"device ID", 0x02, 2, 0x1041},
		{"command", 0x04, 2, 0},
		{"status: capabilities list", 0x06, 2, 0x10},
		{"revision and class", 0x08, 4, 0x0200_0001},
		{"class (word at 0x0a)", 0x0a, 2, 0x0200},
		{"programming interface", 0x09, 1, 0x00},
		{"header type 0, single function", 0x0e, 1, 0x00},
		{"subsystem vendor and ID", 0x2c, 4, 0x0001_1af4},
		{"expansion ROM absent", 0x30, 4, 0},
		{"capabilities pointer", 0x34, 1, 0x40},
		{"interrupt line", 0x3c, 1, 11},
		{"interrupt pin INTA#", 0x3d, 1, 1},
		{"BAR 5: upper half of BAR 4", 0x24, 4, 0x10},
	}
	for _, tt := range tests {
		if got := rd(c, tt.reg, tt.n); got != tt.want {
			t.Errorf("%s: %d bytes at %#x = %#x, want %#x", tt.name, tt.n, tt.reg, got, tt.want)
		}
	}
}

func TestReadOnlyBitsStay(t *testing.T) {
	tests := []struct {
		name string
		reg  uint16
		n    int
		want uint32 // after writing all ones
	}{
		{"vendor and device ID", 0x00, 4, 0x1041_1af4},
		{"command: only the defined bits", 0x04, 2, commandWritable},
		{"status", 0x06, 2, 0x10},
		{"class and revision", 0x08, 4, 0x0200_0001},
		{"cache line size is scratch", 0x0c, 1, 0xff},
		{"latency timer", 0x0d, 1, 0},
		{"header type", 0x0e, 1, 0},
		{"subsystem IDs", 0x2c, 4, 0x0001_1af4},
		{"expansion ROM", 0x30, 4, 0},
		{"capabilities pointer", 0x34, 1, 0x40},
		{"interrupt line is scratch", 0x3c, 1, 0xff},
		{"interrupt pin", 0x3d, 1, 1},
		{"capability ID and next", 0x40, 2, 0x5009},
		{"capability body without a write mask", 0x44, 4, 0},
		{"MSI-X message control: enable and mask only", 0x52, 2, 0xc001},
		{"free space after the list", 0x80, 4, 0},
	}
	for _, tt := range tests {
		c, _ := testFunction(t)
		wr(c, tt.reg, tt.n, 0xffff_ffff)
		if got := rd(c, tt.reg, tt.n); got != tt.want {
			t.Errorf("%s: after writing ones, %d bytes at %#x = %#x, want %#x", tt.name, tt.n, tt.reg, got, tt.want)
		}
	}
}

func TestCommandAccessor(t *testing.T) {
	c, _ := testFunction(t)
	wr(c, 0x04, 2, CommandMemory|CommandBusMaster)
	if got := c.Command(); got != CommandMemory|CommandBusMaster {
		t.Errorf("Command() = %#x after the guest enabled memory and bus mastering", got)
	}
}

// TestInvalidAccesses: wrong widths, dword crossings and offsets past 256
// read as all ones and write nothing.
func TestInvalidAccesses(t *testing.T) {
	tests := []struct {
		name string
		reg  uint16
		n    int
	}{
		{"empty", 0x04, 0},
		{"3 bytes", 0x04, 3},
		{"8 bytes", 0x00, 8},
		{"word crossing a dword", 0x03, 2},
		{"dword misaligned", 0x02, 4},
		{"past the end", 0x100, 1},
		{"straddling the end", 0xfe, 4},
		{"far past the end", 0xffff, 4},
	}
	for _, tt := range tests {
		c, _ := testFunction(t)
		buf := make([]byte, tt.n)
		c.ReadConfig(tt.reg, buf)
		for i, v := range buf {
			if v != 0xff {
				t.Errorf("%s: read byte %d = %#x, want 0xff", tt.name, i, v)
			}
		}
		before := c.regs
		ones := make([]byte, tt.n)
		allOnes(ones)
		c.WriteConfig(tt.reg, ones)
		if c.regs != before {
			t.Errorf("%s: write changed the configuration space", tt.name)
		}
	}
}

func TestUnalignedAccessInsideADword(t *testing.T) {
	c, _ := testFunction(t)
	if got := rd(c, 0x01, 2); got != 0x411a {
		t.Errorf("word at 0x01 = %#x, want 0x411a (bytes 1–2 of 1af4 1041)", got)
	}
	wr(c, 0x3b, 1, 0xff) // reserved/max-lat area stays zero, in range
	wr(c, 0x3c, 1, 5)
	if got := rd(c, 0x3c, 1); got != 5 {
		t.Errorf("interrupt line = %d after writing 5", got)
	}
}
