package kvm

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeRing is a ring page as KVM fills it.
type fakeRing struct{ page []byte }

func newFakeRing() *fakeRing { return &fakeRing{page: make([]byte, 4096)} }

func (r *fakeRing) set(off int, v uint32) { binary.LittleEndian.PutUint32(r.page[off:], v) }
func (r *fakeRing) get(off int) uint32    { return binary.LittleEndian.Uint32(r.page[off:]) }

// push appends a write at last, as coalesced_mmio_write does.
func (r *fakeRing) push(addr uint64, pio bool, data []byte) {
	last := r.get(ringLast)
	e := r.page[ringHeader+int(last)*ringEntrySize:][:ringEntrySize]
	binary.LittleEndian.PutUint64(e, addr)
	binary.LittleEndian.PutUint32(e[ringEntryLen:], uint32(len(data)))
	p := uint32(0)
	if pio {
		p = 1
	}
	binary.LittleEndian.PutUint32(e[ringEntryPIO:], p)
	copy(e[ringEntryData:], data)
	r.set(ringLast, (last+1)%maxCoalesced(len(r.page)))
}

func drainAll(t *testing.T, r *fakeRing) []string {
	t.Helper()
	var got []string
	var mu sync.Mutex
	n, err := drainRing(r.page, &mu, func(w CoalescedWrite) {
		got = append(got, fmt.Sprintf("%#x/%v/%x", w.Addr, w.PIO, w.Data))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(got) {
		t.Errorf("drainRing returned %d for %d writes", n, len(got))
	}
	return got
}

func TestDrainRingOrderAndWrap(t *testing.T) {
	r := newFakeRing()
	if got := drainAll(t, r); len(got) != 0 {
		t.Fatalf("an empty ring gave %v", got)
	}
	// Start near the end so that the writes wrap past entry 169.
	r.set(ringFirst, 167)
	r.set(ringLast, 167)
	r.push(0xcf8, true, []byte{0, 1, 0, 0x80})
	r.push(0x70, true, []byte{0x8a})
	r.push(0xd0000000, false, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	r.push(0xcf8, true, []byte{0x10, 0, 0, 0x80})
	want := "0xcf8/true/00010080 0x70/true/8a 0xd0000000/false/0102030405060708 0xcf8/true/10000080"
	if got := strings.Join(drainAll(t, r), " "); got != want {
		t.Errorf("drained %s\nwant    %s", got, want)
	}
	if f, l := r.get(ringFirst), r.get(ringLast); f != 1 || l != 1 {
		t.Errorf("after draining, first %d last %d, want both 1", f, l)
	}
}

func TestDrainRingRejectsWhatKVMNeverWrites(t *testing.T) {
	for _, c := range []struct {
		name string
		bend func(r *fakeRing)
	}{
		{"last past the ring", func(r *fakeRing) { r.set(ringLast, 170) }},
		{"first past the ring", func(r *fakeRing) { r.set(ringFirst, 0xffffffff) }},
		{"entry longer than 8 bytes", func(r *fakeRing) {
			r.push(0xcf8, true, []byte{1})
			r.set(ringHeader+ringEntryLen, 4096)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newFakeRing()
			c.bend(r)
			var mu sync.Mutex
			served := 0
			_, err := drainRing(r.page, &mu, func(CoalescedWrite) { served++ })
			if err == nil || served != 0 {
				t.Errorf("drainRing: err %v after %d writes, want an error and none served", err, served)
			}
		})
	}
}

// coalescingProgram writes 0, 1, ... 199 to port 0xCF8, more than the ring
// holds, then reads port 0xCFC and halts.
var coalescingProgram = []byte{
	0xba, 0xf8, 0x0c, // mov dx, 0xcf8
	0x31, 0xc0, // xor ax, ax
	0xb9, 200, 0, // mov cx, 200
	0xef,       // out dx, ax  -> into the ring, or an exit once it is full
	0x40,       // inc ax
	0xe2, 0xfc, // loop back to the out
	0xba, 0xfc, 0x0c, // mov dx, 0xcfc
	0xec, // in al, dx -> IO in
	0xf4, // hlt
}

// TestCoalescedPIO runs a guest that writes a coalesced port faster than
// anyone drains it: every write must reach user space once, in order,
// through the ring or (ring full) an exit, and before the read after them.
func TestCoalescedPIO(t *testing.T) {
	sys := openKVM(t)
	if n, err := sys.CheckExtension(CapCoalescedPIO); err != nil || n <= 0 {
		t.Skipf("this KVM has no KVM_CAP_COALESCED_PIO (%d, %v)", n, err)
	}
	vm, cpu := realModeGuest(t, coalescingProgram)
	if err := vm.RegisterCoalescedPIO(sys, 0xcf8, 4); err != nil {
		t.Fatal(err)
	}
	var seen []uint16
	ringWrites, exits := 0, 0
	for {
		e := runToExit(t, cpu)
		n, err := cpu.DrainCoalesced(func(w CoalescedWrite) {
			if !w.PIO || w.Addr != 0xcf8 || len(w.Data) != 2 {
				t.Errorf("ring entry %+v, want a 2-byte write to port 0xcf8", w)
				return
			}
			seen = append(seen, binary.LittleEndian.Uint16(w.Data))
		})
		if err != nil {
			t.Fatal(err)
		}
		ringWrites += n
		if e.Reason == ExitHLT {
			break
		}
		if e.Reason != ExitIO {
			t.Fatalf("exit %v, want port I/O or HLT", e.Reason)
		}
		switch {
		case e.IO.Out && e.IO.Port == 0xcf8:
			exits++
			seen = append(seen, binary.LittleEndian.Uint16(e.IO.Data))
		case !e.IO.Out && e.IO.Port == 0xcfc:
			if len(seen) != 200 {
				t.Errorf("the read of 0xcfc came with %d of the 200 writes before it applied", len(seen))
			}
		default:
			t.Fatalf("unexpected port access %+v", e.IO)
		}
	}
	for i, v := range seen {
		if int(v) != i {
			t.Fatalf("write %d carried %d: %v", i, v, seen)
		}
	}
	if len(seen) != 200 {
		t.Errorf("%d writes reached user space, want 200", len(seen))
	}
	if ringWrites < 169 || exits < 1 {
		t.Errorf("%d writes came through the ring and %d as exits, want at least a full ring (169) and one exit", ringWrites, exits)
	}
}
