package pci

import (
	"encoding/binary"
	"testing"
)

// An op is one guest access, encoded in opSize bytes: flags (bit 0 write,
// bits 1–3 index lens, bit 4 use the high offset byte), offset low and high,
// then a little-endian value.
const opSize = 7

// lens includes widths no device accepts.
var lens = [8]int{1, 2, 4, 0, 3, 8, 4, 2}

type op struct {
	write bool
	n     int
	off   uint16
	v     [8]byte
}

func decodeOps(b []byte) []op {
	var ops []op
	for ; len(b) >= opSize; b = b[opSize:] {
		o := op{write: b[0]&1 != 0, n: lens[b[0]>>1&7], off: uint16(b[1])}
		if b[0]&0x10 != 0 {
			o.off |= uint16(b[2]) << 8
		}
		copy(o.v[:], b[3:7])
		copy(o.v[4:], b[3:7])
		ops = append(ops, o)
	}
	return ops
}

// enc builds one op for a seed.
func enc(write bool, n int, off uint16, v uint32) []byte {
	flags := byte(0)
	for i, l := range lens {
		if l == n {
			flags = byte(i) << 1
			break
		}
	}
	if write {
		flags |= 1
	}
	if off > 0xff {
		flags |= 0x10
	}
	b := []byte{flags, byte(off), byte(off >> 8), 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[3:], v)
	return b
}

func seq(ops ...[]byte) []byte {
	var out []byte
	for _, o := range ops {
		out = append(out, o...)
	}
	return out
}

// checkBARs asserts every BAR register holds a value its size and type allow.
func checkBARs(t *testing.T, f Function) {
	t.Helper()
	for i, b := range testBARs {
		reg := uint16(regBAR0 + 4*i)
		v := rd(f, reg, 4)
		var typ, typeMask, low uint32
		switch b.Kind {
		case BARMem32:
			typeMask, low = barMemTypeMask, uint32(b.Size-1)
		case BARIO:
			typ, typeMask, low = barIOSpace, barIOTypeMask, uint32(b.Size-1)|^uint32(ioAddrMask|barIOTypeMask)
		case BARMem64:
			typ, typeMask, low = b.typeBits(), barMemTypeMask, uint32(b.Size-1)
			if hi := rd(f, reg+4, 4); hi&uint32((b.Size-1)>>32) != 0 {
				t.Fatalf("BAR %d upper half %#x has bits below its size %#x", i, hi, b.Size)
			}
		default:
			continue
		}
		if v&typeMask != typ || v&^typeMask&low != 0 {
			t.Fatalf("BAR %d reads %#x: type bits or address bits below size %#x", i, v, b.Size)
		}
	}
}

// relocationModel checks each reported move against the last one.
type relocationModel struct {
	t    *testing.T
	addr [numBARs]uint64
}

func newRelocationModel(t *testing.T, c *ConfigSpace) *relocationModel {
	m := &relocationModel{t: t}
	for i, b := range testBARs {
		m.addr[i] = b.Addr
	}
	c.OnRelocate(m.moved)
	return m
}

func (m *relocationModel) moved(bar int, old, new uint64) {
	b := testBARs[bar]
	if b.Kind == 0 || old != m.addr[bar] || old == new || new&(b.Size-1) != 0 {
		m.t.Fatalf("relocation of BAR %d from %#x to %#x; expected from %#x, size %#x", bar, old, new, m.addr[bar], b.Size)
	}
	if b.Kind == BARMem32 && new >= 1<<32 || b.Kind == BARIO && new > 0xffff {
		m.t.Fatalf("BAR %d moved to %#x, out of its address space", bar, new)
	}
	m.addr[bar] = new
}

func FuzzConfigSpace(f *testing.F) {
	f.Add([]byte{})
	f.Add(seq( // Linux sizing every BAR
		enc(true, 4, 0x10, 0xffff_ffff), enc(false, 4, 0x10, 0), enc(true, 4, 0x10, 0xc000_0000),
		enc(true, 4, 0x14, 0xffff_ffff), enc(false, 4, 0x14, 0), enc(true, 4, 0x14, 0xc041),
		enc(true, 4, 0x18, 0xffff_ffff), enc(true, 4, 0x1c, 0xffff_ffff), enc(false, 4, 0x1c, 0),
		enc(true, 4, 0x20, 0xffff_ffff), enc(true, 4, 0x24, 0xffff_ffff), enc(false, 4, 0x20, 0)))
	f.Add(seq( // moves, partial and byte-wide
		enc(true, 4, 0x18, 0x1_0000), enc(true, 4, 0x1c, 9), enc(true, 1, 0x13, 0xd0),
		enc(true, 2, 0x16, 0xffff), enc(true, 2, 0x14, 0x1234), enc(true, 1, 0x27, 0xff)))
	f.Add(seq( // widths and offsets no one should use
		enc(true, 3, 0x10, 0xffff_ffff), enc(true, 8, 0x10, 0xffff_ffff), enc(true, 0, 0x10, 0),
		enc(true, 4, 0x12, 0xffff_ffff), enc(true, 2, 0x13, 0xffff), enc(false, 4, 0xfe, 0),
		enc(true, 4, 0xfffc, 0xffff_ffff), enc(false, 2, 0xffff, 0), enc(true, 4, 0x100, 0)))
	f.Add(seq( // the header and the capability list
		enc(true, 4, 0x00, 0), enc(true, 4, 0x04, 0xffff_ffff), enc(true, 1, 0x34, 0x44),
		enc(true, 2, 0x40, 0), enc(true, 4, 0x50, 0xffff_ffff), enc(true, 4, 0x30, 0xffff_ffff)))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, _ := testFunction(t)
		m := newRelocationModel(t, c)
		caps := walkCaps(t, c)
		for _, o := range decodeOps(b) {
			buf := o.v[:o.n]
			if o.write {
				c.WriteConfig(o.off, buf)
			} else {
				c.ReadConfig(o.off, buf)
				if !validAccess(uint64(o.off), o.n, configSize) && !isAllOnes(buf) {
					t.Fatalf("invalid read of %d bytes at %#x returned %x", o.n, o.off, buf)
				}
			}
			checkBARs(t, c)
		}
		for i, want := range m.addr {
			if got, _ := c.BAR(i); got.Addr != want {
				t.Fatalf("BAR(%d).Addr = %#x, but the owner was last told %#x", i, got.Addr, want)
			}
		}
		checkIdentity(t, c, caps)
	})
}

// checkIdentity asserts the read-only header and capability list survived.
func checkIdentity(t *testing.T, f Function, caps []capEntry) {
	t.Helper()
	for _, r := range []struct {
		reg  uint16
		n    int
		want uint32
	}{{0x00, 4, 0x1041_1af4}, {0x08, 4, 0x0200_0001}, {0x2c, 4, 0x0001_1af4}, {0x0e, 1, 0}, {0x30, 4, 0}} {
		if got := rd(f, r.reg, r.n); got != r.want {
			t.Fatalf("read-only register %#x changed to %#x", r.reg, got)
		}
	}
	got := walkCaps(t, f)
	if len(got) != len(caps) {
		t.Fatalf("capability list changed: %v, was %v", got, caps)
	}
	for i := range got {
		if got[i] != caps[i] {
			t.Fatalf("capability list changed: %v, was %v", got, caps)
		}
	}
}

func FuzzConfigMechanism(f *testing.F) {
	f.Add([]byte{})
	f.Add(seq( // Linux's probe, then a scan of two slots
		enc(true, 1, 3, 0x01), enc(false, 4, 0, 0), enc(true, 4, 0, 0x8000_0000), enc(false, 4, 0, 0),
		enc(true, 4, 0, conf1(0, 0, 0x08)), enc(false, 2, 6, 0), enc(true, 4, 0, conf1(3, 0, 0)),
		enc(false, 4, 4, 0), enc(true, 4, 0, conf1(4, 0, 0)), enc(false, 2, 4, 0)))
	f.Add(seq( // BAR sizing and a move through the data port
		enc(true, 4, 0, conf1(3, 0, 0x10)), enc(true, 4, 4, 0xffff_ffff), enc(false, 4, 4, 0),
		enc(true, 4, 4, 0xc000_0000), enc(true, 4, 4, 0xe000_0000),
		enc(true, 4, 0, conf1(3, 0, 0x1c)), enc(true, 4, 4, 0xffff_ffff), enc(true, 2, 6, 0x0001)))
	f.Add(seq( // odd widths and offsets, the enable bit off, reserved bits set
		enc(true, 2, 0, 0xffff), enc(true, 4, 1, 0xffff_ffff), enc(true, 8, 0, 0), enc(false, 3, 4, 0),
		enc(true, 4, 0, 0x7fff_ffff), enc(true, 4, 4, 0), enc(true, 4, 0, 0xffff_ffff), enc(false, 4, 5, 0),
		enc(true, 4, 7, 0), enc(false, 1, 8, 0), enc(true, 4, 200, 0xffff_ffff)))
	f.Fuzz(func(t *testing.T, b []byte) {
		bus := NewBus()
		fn, _ := testFunction(t)
		newRelocationModel(t, fn)
		caps := walkCaps(t, fn)
		if err := bus.Add(3, fn); err != nil {
			t.Fatal(err)
		}
		p := ports{NewConfigIO(bus)}
		for _, o := range decodeOps(b) {
			off := uint64(o.off & 0xf) // past the 8 ports too
			buf := o.v[:o.n]
			if o.write {
				p.d.Write(off, buf)
			} else {
				enabled := p.in(0xcf8, 4)&addrEnable != 0
				p.d.Read(off, buf)
				dataOK := off >= offsetData && validAccess(off-offsetData, o.n, 4) && enabled
				if !(off == 0 && o.n == 4) && !dataOK && !isAllOnes(buf) {
					t.Fatalf("invalid read of %d bytes at port offset %d returned %x", o.n, off, buf)
				}
			}
			if a := p.in(0xcf8, 4); a&^addrWritable != 0 {
				t.Fatalf("CONFIG_ADDRESS %#x has reserved bits set", a)
			}
			checkBARs(t, fn)
		}
		checkIdentity(t, fn, caps)
		p.out(0xcf8, 4, conf1(0, 0, 0))
		if got := p.in(0xcfc, 4); got != 0x0d57_8086 {
			t.Fatalf("host bridge IDs read %#x", got)
		}
	})
}
