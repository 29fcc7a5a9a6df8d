package machine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/internal/eventfd"
)

func TestBARAllocator(t *testing.T) {
	a := barAllocator{next: 0xc0000000, end: 0xc0100000}
	for _, tc := range []struct {
		size, want uint64
	}{
		{0x1000, 0xc0000000},
		{0x4000, 0xc0004000}, // naturally aligned: skips 0xc0001000-0xc0003fff
		{0x10, 0xc0008000},
		{0x80000, 0xc0080000},
	} {
		got, err := a.alloc(tc.size)
		if err != nil || got != tc.want {
			t.Errorf("alloc(%#x) = %#x, %v; want %#x", tc.size, got, err, tc.want)
		}
	}
	if got, err := a.alloc(0x3000); err == nil {
		t.Errorf("alloc(0x3000) = %#x: want an error for a size that is not a power of two", got)
	}
	if got, err := a.alloc(0x100000); err == nil {
		t.Errorf("alloc past the window = %#x, want an error", got)
	}
	if got, err := a.alloc(0x10); err == nil {
		t.Errorf("alloc in a full window = %#x, want an error", got)
	}
}

// fakeIOEvents keeps the ioeventfds KVM would hold, as "fd@addr".
type fakeIOEvents struct {
	set  map[string]bool
	fail map[uint64]bool // addresses KVM refuses
}

func key(fd int, addr uint64) string { return fmt.Sprintf("%d@%#x", fd, addr) }

func (f *fakeIOEvents) IOEventFD(fd int, addr uint64, n uint32, pio bool) error {
	if n != notifyLen || pio || f.fail[addr] || f.set[key(fd, addr)] {
		return fmt.Errorf("ioeventfd %d at %#x len %d pio %v refused", fd, addr, n, pio)
	}
	f.set[key(fd, addr)] = true
	return nil
}

func (f *fakeIOEvents) RemoveIOEventFD(fd int, addr uint64, n uint32, pio bool) error {
	if !f.set[key(fd, addr)] {
		return fmt.Errorf("no ioeventfd %d at %#x", fd, addr)
	}
	delete(f.set, key(fd, addr))
	return nil
}

func sorted(ss ...string) []string {
	sort.Strings(ss)
	return ss
}

func (f *fakeIOEvents) list() []string {
	var out []string
	for k := range f.set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// recorder is a BAR's contents: it remembers the last offset accessed.
type recorder struct{ last uint64 }

func (r *recorder) Read(off uint64, data []byte)  { r.last = off }
func (r *recorder) Write(off uint64, data []byte) { r.last = off }

// reaches says whether an access at addr on bus lands in dev, at off.
func reaches(bus *devices.Bus, dev *recorder, addr, off uint64) bool {
	dev.last = ^uint64(0)
	return bus.Read(addr, make([]byte, 4)) && dev.last == off
}

func newKick(t *testing.T) *eventfd.EventFD {
	t.Helper()
	e, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestPCIBARFollowsTheGuest(t *testing.T) {
	bus := devices.NewBus("mmio")
	kick0, kick1 := newKick(t), newKick(t)
	ev := &fakeIOEvents{set: map[string]bool{}, fail: map[uint64]bool{0xd0003004: true}}
	dev := &recorder{}
	b := &pciBAR{name: "test BAR", size: 0x4000, dev: dev, bus: bus, kvm: ev,
		notify: []virtio.Notification{{Offset: 0x3000, Kick: kick0}, {Offset: 0x3004, Kick: kick1}}}
	if err := b.mapAt(0xc0000000); err != nil {
		t.Fatal(err)
	}
	// list sorts as strings: so is want, whatever the two eventfds' numbers
	// (fds 9 and 11 sort "11@..." first).
	want := sorted(key(kick0.FD(), 0xc0003000), key(kick1.FD(), 0xc0003004))
	if fmt.Sprint(ev.list()) != fmt.Sprint(want) {
		t.Errorf("ioeventfds %v, want %v", ev.list(), want)
	}

	b.relocate(0, 0xc0000000, 0xd0000000)
	if reaches(bus, dev, 0xc0000010, 0x10) || !reaches(bus, dev, 0xd0000010, 0x10) {
		t.Error("after the move the BAR answers at the old address or not at the new one")
	}
	// KVM refused kick1 at its new address: its writes exit to the BAR instead.
	want = []string{key(kick0.FD(), 0xd0003000)}
	if fmt.Sprint(ev.list()) != fmt.Sprint(want) {
		t.Errorf("ioeventfds after the move %v, want %v", ev.list(), want)
	}

	// Onto another device: unmapped until the guest moves it away.
	if err := bus.Register(0xe0000000, 0x1000, "other", &recorder{}); err != nil {
		t.Fatal(err)
	}
	b.relocate(0, 0xd0000000, 0xe0000000)
	if reaches(bus, dev, 0xd0000010, 0x10) || reaches(bus, dev, 0xe0000010, 0x10) || len(ev.list()) != 0 {
		t.Errorf("BAR moved onto another device: still reachable, or ioeventfds %v left", ev.list())
	}
	b.relocate(0, 0xe0000000, 0xc0000000)
	if !reaches(bus, dev, 0xc0003ffc, 0x3ffc) || len(ev.list()) != 2 {
		t.Errorf("BAR moved back: reachable %v, ioeventfds %v", reaches(bus, dev, 0xc0003ffc, 0x3ffc), ev.list())
	}
	b.relocate(2, 0xc0000000, 0xd0000000) // another BAR: not ours
	if !reaches(bus, dev, 0xc0000000, 0) {
		t.Error("a move of BAR 2 moved BAR 0")
	}
	if err := b.unmap(); err != nil || len(ev.list()) != 0 || reaches(bus, dev, 0xc0000000, 0) {
		t.Errorf("unmap: %v, ioeventfds left %v", err, ev.list())
	}
}

// fakeTransport is a PCI function with one 16 KiB memory BAR.
type fakeTransport struct {
	cs     *pci.ConfigSpace
	bar    *recorder
	closed bool
}

func (f *fakeTransport) Notifications() []virtio.Notification { return nil }

func newFakeTransport(t *testing.T, addr uint64) *fakeTransport {
	t.Helper()
	cs := pci.NewConfigSpace(pci.Header{VendorID: 0x1af4, DeviceID: 0x1044, ClassCode: 0xff0000})
	if err := cs.SetBAR(0, pci.BAR{Kind: pci.BARMem32, Addr: addr, Size: 0x4000}); err != nil {
		t.Fatal(err)
	}
	return &fakeTransport{cs: cs, bar: &recorder{}}
}

func (f *fakeTransport) Function() pci.Function        { return f.cs }
func (f *fakeTransport) ConfigSpace() *pci.ConfigSpace { return f.cs }
func (f *fakeTransport) BAR() devices.Device           { return f.bar }
func (f *fakeTransport) Close() error                  { f.closed = true; return nil }

func writeBAR0(v *Machine, slot uint8, val uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], val)
	v.pci.WriteConfig(pci.BDF{Device: slot}, 0x10, b[:])
}

// TestAddPCIDevice drives a function the way Linux does: it finds it in
// configuration space, sizes the BAR (all ones, then the old value back) and
// moves it.
func TestAddPCIDevice(t *testing.T) {
	v := &Machine{}
	v.buses.MMIO = devices.NewBus("mmio")
	v.pci = pci.NewBus()
	v.bars = barAllocator{next: pciMMIOStart, end: pciMMIOEnd}
	addr, err := v.bars.alloc(0x4000)
	if err != nil {
		t.Fatal(err)
	}
	ft := newFakeTransport(t, addr)
	if err := v.addPCIDevice(3, ft); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 4)
	v.pci.ReadConfig(pci.BDF{Device: 3}, 0, id)
	if got := binary.LittleEndian.Uint32(id); got != 0x10441af4 {
		t.Errorf("vendor/device at 00:03.0 = %#x, want 0x10441af4", got)
	}
	if !reaches(v.buses.MMIO, ft.bar, addr+0x20, 0x20) {
		t.Fatalf("BAR 0 not mapped at %#x", addr)
	}
	writeBAR0(v, 3, 0xffffffff)
	writeBAR0(v, 3, uint32(addr))
	if !reaches(v.buses.MMIO, ft.bar, addr+0x20, 0x20) {
		t.Error("BAR sizing unmapped the BAR")
	}
	const moved = 0xd0000000
	writeBAR0(v, 3, moved)
	if reaches(v.buses.MMIO, ft.bar, addr, 0) || !reaches(v.buses.MMIO, ft.bar, moved+4, 4) {
		t.Error("the guest moved BAR 0 but the MMIO bus did not follow")
	}

	// A second function on the same slot is refused and leaves nothing mapped.
	other := newFakeTransport(t, 0xc8000000)
	if err := v.addPCIDevice(3, other); !errors.Is(err, pci.ErrSlotInUse) {
		t.Errorf("second device in slot 3: %v, want ErrSlotInUse", err)
	}
	if reaches(v.buses.MMIO, other.bar, 0xc8000000, 0) {
		t.Error("a refused device's BAR stayed mapped")
	}
	if err := v.Close(); err != nil || !ft.closed || other.closed {
		t.Errorf("Close: %v; added device closed %v, refused one %v; want only the added one", err, ft.closed, other.closed)
	}
}
