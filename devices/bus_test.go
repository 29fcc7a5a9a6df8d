package devices

import (
	"strings"
	"testing"
)

// recorder is a device that remembers its last access and answers reads
// with its id in every byte.
type recorder struct {
	id        byte
	reads     []uint64
	writes    []uint64
	lastWrite []byte
}

func (r *recorder) Read(offset uint64, data []byte) {
	r.reads = append(r.reads, offset)
	for i := range data {
		data[i] = r.id
	}
}

func (r *recorder) Write(offset uint64, data []byte) {
	r.writes = append(r.writes, offset)
	r.lastWrite = append([]byte(nil), data...)
}

func TestRegisterRejectsBadRanges(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, size uint64
		want       string // in the error
	}{
		{"zero size", 0x100, 0, "size 0"},
		{"wraps", ^uint64(0) - 3, 8, "wraps"},
		{"ends past the top", 1, ^uint64(0), "wraps"},
		{"same range", 0x3f8, 8, "overlaps"},
		{"inside", 0x3fa, 2, "overlaps"},
		{"covers", 0x3f0, 0x20, "overlaps"},
		{"straddles the start", 0x3f0, 9, "overlaps"},
		{"straddles the end", 0x3ff, 2, "overlaps"},
		{"straddles the next device", 0x3fc, 0x10, "overlaps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBus("pio")
			if err := b.Register(0x3f8, 8, "serial", &recorder{}); err != nil {
				t.Fatal(err)
			}
			if err := b.Register(0x408, 8, "next", &recorder{}); err != nil {
				t.Fatal(err)
			}
			err := b.Register(tc.base, tc.size, "new", &recorder{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pio bus") {
				t.Fatalf("Register(%#x, %#x) = %v, want an error from the pio bus saying %q", tc.base, tc.size, err, tc.want)
			}
		})
	}
}

func TestRegisterAcceptsAdjacentRanges(t *testing.T) {
	b := NewBus("pio")
	for _, r := range []struct{ base, size uint64 }{
		{0x3f8, 8}, {0x3f0, 8}, {0x400, 1}, {0, 1}, {^uint64(0) - 1, 1}, {0x3ef, 1},
	} {
		if err := b.Register(r.base, r.size, "dev", &recorder{}); err != nil {
			t.Errorf("Register(%#x, %#x) next to existing devices: %v", r.base, r.size, err)
		}
	}
}

func TestDispatchReachesTheDeviceAtItsOffset(t *testing.T) {
	b := NewBus("pio")
	devs := map[string]*recorder{"a": {id: 0xa}, "b": {id: 0xb}, "c": {id: 0xc}}
	// Registered out of order: the bus keeps them sorted.
	for _, r := range []struct {
		base, size uint64
		name       string
	}{{0x70, 2, "b"}, {0x3f8, 8, "c"}, {0x60, 1, "a"}} {
		if err := b.Register(r.base, r.size, r.name, devs[r.name]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		addr   uint64
		dev    string
		offset uint64
	}{
		{0x60, "a", 0}, {0x70, "b", 0}, {0x71, "b", 1}, {0x3f8, "c", 0}, {0x3ff, "c", 7},
	} {
		d := devs[tc.dev]
		data := make([]byte, 2)
		if !b.Read(tc.addr, data) {
			t.Errorf("Read(%#x) reported no device, want %s", tc.addr, tc.dev)
		}
		if data[0] != d.id || data[1] != d.id {
			t.Errorf("Read(%#x) = % x, want %s's id %#x", tc.addr, data, tc.dev, d.id)
		}
		if got := d.reads[len(d.reads)-1]; got != tc.offset {
			t.Errorf("Read(%#x) reached %s at offset %d, want %d", tc.addr, tc.dev, got, tc.offset)
		}
		if !b.Write(tc.addr, []byte{0x5a}) {
			t.Errorf("Write(%#x) reported no device, want %s", tc.addr, tc.dev)
		}
		if got := d.writes[len(d.writes)-1]; got != tc.offset || d.lastWrite[0] != 0x5a {
			t.Errorf("Write(%#x) reached %s at offset %d with % x, want offset %d with 5a", tc.addr, tc.dev, got, d.lastWrite, tc.offset)
		}
	}
	if len(b.Unhandled()) != 0 {
		t.Errorf("accesses to devices counted as unhandled: %+v", b.Unhandled())
	}
}

// Unregister frees a range for a device that moved, as a PCI BAR does, and
// leaves its neighbours alone.
func TestUnregister(t *testing.T) {
	b := NewBus("mmio")
	a, c, moved := &recorder{id: 1}, &recorder{id: 3}, &recorder{id: 2}
	for _, r := range []struct {
		base uint64
		dev  *recorder
	}{{0x1000, a}, {0x2000, moved}, {0x3000, c}} {
		if err := b.Register(r.base, 0x1000, "dev", r.dev); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Unregister(0x2800); err == nil || !strings.Contains(err.Error(), "mmio bus") {
		t.Errorf("Unregister inside a range, not at its base: %v, want an mmio bus error", err)
	}
	if err := b.Unregister(0x2000); err != nil {
		t.Fatal(err)
	}
	if err := b.Unregister(0x2000); err == nil {
		t.Error("Unregister of a base already removed succeeded")
	}
	data := make([]byte, 1)
	if b.Read(0x2000, data) || data[0] != 0xff {
		t.Errorf("read at the removed range: handled, %#x; want unhandled all ones", data[0])
	}
	for addr, want := range map[uint64]byte{0x1fff: 1, 0x3000: 3} {
		if !b.Read(addr, data) || data[0] != want {
			t.Errorf("read at %#x = %#x, want neighbour %d", addr, data[0], want)
		}
	}
	// The freed range takes a device again, now overlapping the old one.
	if err := b.Register(0x2800, 0x800, "moved", moved); err != nil {
		t.Errorf("Register into the freed range: %v", err)
	}
	if !b.Read(0x2900, data) || data[0] != 2 || moved.reads[len(moved.reads)-1] != 0x100 {
		t.Errorf("read at the new place = %#x, offsets %v", data[0], moved.reads)
	}
}

func TestUnhandledReadsAllOnesAndIsCounted(t *testing.T) {
	b := NewBus("pio")
	if err := b.Register(0x70, 2, "cmos", &recorder{}); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []uint64{0x6f, 0x72, 0x72, 0} {
		data := []byte{1, 2, 3, 4}
		if b.Read(addr, data) {
			t.Errorf("Read(%#x) claimed a device", addr)
		}
		if string(data) != "\xff\xff\xff\xff" {
			t.Errorf("unhandled Read(%#x) = % x, want all ones as from an empty ISA bus", addr, data)
		}
	}
	if b.Write(0x72, []byte{1}) {
		t.Error("Write(0x72) claimed a device")
	}
	want := []UnhandledAccess{
		{Addr: 0, Count: 1},
		{Addr: 0x6f, Count: 1},
		{Addr: 0x72, Count: 2},
		{Addr: 0x72, Write: true, Count: 1},
	}
	got := b.Unhandled()
	if len(got) != len(want) {
		t.Fatalf("Unhandled() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Unhandled()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// A guest scanning the whole port space must not grow the table without
// bound, nor lose count of accesses.
func TestUnhandledTableIsBounded(t *testing.T) {
	b := NewBus("pio")
	const scanned = 4 * maxTrackedAddrs
	for addr := uint64(0); addr < scanned; addr++ {
		b.Read(addr, make([]byte, 1))
		b.Write(addr, []byte{0})
	}
	got := b.Unhandled()
	if len(got) > maxTrackedAddrs+2 {
		t.Errorf("Unhandled() has %d entries after scanning %d ports, want at most %d", len(got), scanned, maxTrackedAddrs+2)
	}
	var total, other uint64
	for _, u := range got {
		total += u.Count
		if u.Addr == otherAddr {
			other += u.Count
		}
	}
	if total != 2*scanned {
		t.Errorf("counts add up to %d, want %d accesses", total, 2*scanned)
	}
	if other == 0 {
		t.Error("no accesses counted under the overflow address ^0")
	}
	// An address tracked before the table filled is still counted on its own.
	b.Read(0, make([]byte, 1))
	if got := b.Unhandled(); got[0].Addr != 0 || got[0].Write || got[0].Count != 2 {
		t.Errorf("first entry %+v, want address 0 read twice", got[0])
	}
}

func FuzzBus(f *testing.F) {
	f.Add([]byte{0, 0x3f, 0xf8, 8, 1, 0x3f, 0xfa, 2, 2, 0x3f, 0xff, 1})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0xff, 0xff, 4})
	f.Add([]byte{})
	// Each op is four bytes: kind, a 16-bit address, and a size or width.
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := NewBus("fuzz")
		type reg struct{ base, size uint64 }
		var regs []reg
		for ; len(ops) >= 4; ops = ops[4:] {
			addr := uint64(ops[1])<<8 | uint64(ops[2])
			n := uint64(ops[3])
			switch ops[0] % 3 {
			case 0:
				// Stretch some ranges to the top of the 64-bit space.
				if ops[0]&0x80 != 0 {
					addr = ^uint64(0) - addr
				}
				err := b.Register(addr, n, "dev", &recorder{id: byte(len(regs))})
				overlaps := n == 0 || addr+n < addr
				for _, r := range regs {
					if addr < r.base+r.size && r.base < addr+n {
						overlaps = true
					}
				}
				if overlaps != (err != nil) {
					t.Fatalf("Register(%#x, %#x) = %v with %+v registered", addr, n, err, regs)
				}
				if err == nil {
					regs = append(regs, reg{addr, n})
				}
			case 1:
				data := make([]byte, n%9)
				handled := b.Read(addr, data)
				owner := -1
				for i, r := range regs {
					if addr >= r.base && addr-r.base < r.size {
						owner = i
					}
				}
				if handled != (owner >= 0) {
					t.Fatalf("Read(%#x) handled = %v, owner %d of %+v", addr, handled, owner, regs)
				}
				for _, c := range data {
					if handled && c != byte(owner) || !handled && c != 0xff {
						t.Fatalf("Read(%#x) = % x, owner %d", addr, data, owner)
					}
				}
			case 2:
				b.Write(addr, make([]byte, n%9))
			}
		}
		if n := len(b.Unhandled()); n > maxTrackedAddrs+2 {
			t.Fatalf("%d unhandled entries, want at most %d", n, maxTrackedAddrs+2)
		}
	})
}
