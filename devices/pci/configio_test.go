package pci

import (
	"encoding/binary"
	"sync"
	"testing"
)

const portConfigAddress = 0xcf8

// ports drives a ConfigIO by port number, as IN and OUT instructions do.
type ports struct{ d *ConfigIO }

func (p ports) in(port uint16, n int) uint32 {
	b := make([]byte, 4)
	p.d.Read(uint64(port-portConfigAddress), b[:n])
	return binary.LittleEndian.Uint32(b)
}

func (p ports) out(port uint16, n int, v uint32) {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	p.d.Write(uint64(port-portConfigAddress), b[:n])
}

// conf1 is Linux's PCI_CONF1_ADDRESS.
func conf1(dev, fn uint8, reg uint16) uint32 {
	return 0x8000_0000 | uint32(dev)<<11 | uint32(fn)<<8 | uint32(reg&0xfc)
}

func newPorts(t *testing.T) (ports, *[]move) {
	t.Helper()
	b := NewBus()
	f, moves := testFunction(t)
	if err := b.Add(3, f); err != nil {
		t.Fatal(err)
	}
	return ports{NewConfigIO(b)}, moves
}

// TestLinuxProbesMechanism1 replays pci_check_type1 and pci_sanity_check
// (arch/x86/pci/direct.c).
func TestLinuxProbesMechanism1(t *testing.T) {
	p, _ := newPorts(t)
	p.out(0xcfb, 1, 0x01)
	tmp := p.in(0xcf8, 4)
	p.out(0xcf8, 4, 0x8000_0000)
	if got := p.in(0xcf8, 4); got != 0x8000_0000 {
		t.Fatalf("CONFIG_ADDRESS reads %#x after writing 0x80000000", got)
	}
	p.out(0xcf8, 4, conf1(0, 0, 0x0a))
	if got := p.in(0xcfc+2, 2); got != 0x0600 {
		t.Errorf("host bridge class word = %#x, want 0x0600", got)
	}
	p.out(0xcf8, 4, tmp)
	if got := p.in(0xcf8, 4); got != tmp {
		t.Errorf("CONFIG_ADDRESS = %#x after restoring %#x", got, tmp)
	}
}

func TestConfigAddressLatch(t *testing.T) {
	tests := []struct {
		name  string
		port  uint16
		n     int
		v     uint32
		latch uint32 // CONFIG_ADDRESS afterwards, starting from 0x80001800
	}{
		{"dword write latches", 0xcf8, 4, 0x8000_2004, 0x8000_2004},
		{"reserved bits 30:24 and 1:0 read as zero", 0xcf8, 4, 0xffff_ffff, 0x80ff_fffc},
		{"word write ignored", 0xcf8, 2, 0x0000, 0x8000_1800},
		{"byte write to 0xcf8 ignored", 0xcf8, 1, 0x00, 0x8000_1800},
		{"byte write to 0xcf9 (reset control) ignored", 0xcf9, 1, 0x06, 0x8000_1800},
		{"byte write to 0xcfb ignored", 0xcfb, 1, 0x01, 0x8000_1800},
		{"word write to 0xcfa ignored", 0xcfa, 2, 0x0000, 0x8000_1800},
	}
	for _, tt := range tests {
		p, _ := newPorts(t)
		p.out(0xcf8, 4, 0x8000_1800)
		p.out(tt.port, tt.n, tt.v)
		if got := p.in(0xcf8, 4); got != tt.latch {
			t.Errorf("%s: CONFIG_ADDRESS = %#x, want %#x", tt.name, got, tt.latch)
		}
	}
}

func TestConfigDataReads(t *testing.T) {
	tests := []struct {
		name    string
		address uint32
		port    uint16
		n       int
		want    uint32
	}{
		{"IDs", conf1(3, 0, 0), 0xcfc, 4, 0x1041_1af4},
		{"vendor ID word", conf1(3, 0, 0), 0xcfc, 2, 0x1af4},
		{"byte at 0xcfd", conf1(3, 0, 0), 0xcfd, 1, 0x1a},
		{"word at 0xcfe", conf1(3, 0, 0), 0xcfe, 2, 0x1041},
		{"byte at 0xcff", conf1(3, 0, 0), 0xcff, 1, 0x10},
		{"word at 0xcfd, inside the dword", conf1(3, 0, 0), 0xcfd, 2, 0x411a},
		{"class word, as Linux reads it", conf1(3, 0, 0x0a), 0xcfe, 2, 0x0200},
		{"interrupt pin", conf1(3, 0, 0x3c), 0xcfd, 1, 1},
		{"host bridge IDs", conf1(0, 0, 0), 0xcfc, 4, 0x0d57_8086},
		{"host bridge class code", conf1(0, 0, 0x08), 0xcfc, 4, 0x0600_0000},
		{"missing device", conf1(4, 0, 0), 0xcfc, 4, 0xffff_ffff},
		{"missing device, vendor word", conf1(4, 0, 0), 0xcfc, 2, 0xffff},
		{"missing function", conf1(3, 1, 0), 0xcfc, 4, 0xffff_ffff},
		{"missing bus", conf1(3, 0, 0) | 1<<16, 0xcfc, 4, 0xffff_ffff},
		{"enable bit clear", conf1(3, 0, 0) &^ 0x8000_0000, 0xcfc, 4, 0xffff_ffff},
		{"dword at 0xcfd crosses the window", conf1(3, 0, 0), 0xcfd, 4, 0xffff_ffff},
		{"word read of CONFIG_ADDRESS", conf1(3, 0, 0), 0xcf8, 2, 0xffff},
		{"byte read of 0xcf9", conf1(3, 0, 0), 0xcf9, 1, 0xff},
		{"3 bytes", conf1(3, 0, 0), 0xcfc, 3, 0xff_ffff},
	}
	for _, tt := range tests {
		p, _ := newPorts(t)
		p.out(0xcf8, 4, tt.address)
		if got := p.in(tt.port, tt.n); got != tt.want {
			t.Errorf("%s: %d bytes at %#x = %#x, want %#x", tt.name, tt.n, tt.port, got, tt.want)
		}
	}
}

func TestConfigDataWrites(t *testing.T) {
	p, moves := newPorts(t)
	p.out(0xcf8, 4, conf1(3, 0, 0x3c))
	p.out(0xcfc, 1, 9)
	if got := p.in(0xcfc, 1); got != 9 {
		t.Errorf("interrupt line = %d after writing 9", got)
	}

	p.out(0xcf8, 4, conf1(3, 0, 0x3c)&^0x8000_0000)
	p.out(0xcfc, 1, 10) // enable bit clear: dropped
	p.out(0xcf8, 4, conf1(3, 0, 0x3c))
	if got := p.in(0xcfc, 1); got != 9 {
		t.Errorf("interrupt line = %d after a write with the enable bit clear", got)
	}

	// Size and move BAR 0 through the ports.
	p.out(0xcf8, 4, conf1(3, 0, 0x10))
	orig := p.in(0xcfc, 4)
	p.out(0xcfc, 4, 0xffff_ffff)
	if sz := p.in(0xcfc, 4); sz != 0xffff_f000 {
		t.Errorf("BAR 0 sizes to %#x, want 0xfffff000", sz)
	}
	p.out(0xcfc, 4, orig)
	p.out(0xcfc, 4, 0xd000_0000)
	if want := []move{{0, 0xc000_0000, 0xd000_0000}}; !equalMoves(*moves, want) {
		t.Errorf("relocations %v, want %v", *moves, want)
	}
}

// TestConfigIOConcurrent is for the race detector: vCPUs share one latch, so
// without the guest's own lock (Linux's pci_config_lock) they may read each
// other's register, but every read is a whole value one of them could see.
func TestConfigIOConcurrent(t *testing.T) {
	p, _ := newPorts(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				dev := uint8(g % 5)
				p.out(0xcf8, 4, conf1(dev, 0, 0))
				switch v := p.in(0xcfc, 4); {
				case v == 0x0d57_8086, v == 0x1041_1af4, v == 0xffff_ffff:
				case v&^0xff == 0x100: // device 3's interrupt pin and line
				default:
					t.Errorf("goroutine %d read %#x", g, v)
					return
				}
				p.out(0xcf8, 4, conf1(3, 0, 0x3c))
				p.out(0xcfc, 1, uint32(i))
			}
		}()
	}
	wg.Wait()
}
