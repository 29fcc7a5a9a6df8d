package machine

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/rng"
	"github.com/govmm/govmm/internal/kvmirq"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// lastTable is a kvmirq.GSITable that keeps the last routing table.
type lastTable struct{ routes []kvm.RoutingEntry }

func (g *lastTable) SetGSIRouting(t []kvm.RoutingEntry) error { g.routes = t; return nil }
func (g *lastTable) IRQFD(int, uint32) error                  { return nil }

// witness forwards to a BAR's registers and remembers the last offset it
// was asked for, so the target can tell which function a bus access reached.
type witness struct {
	devices.Device
	last uint64
}

func (w *witness) Read(off uint64, data []byte)  { w.last = off; w.Device.Read(off, data) }
func (w *witness) Write(off uint64, data []byte) { w.last = off; w.Device.Write(off, data) }

// relocRig is three virtio-rng functions on PCI bus 0, their BARs on an
// MMIO bus, kicks as fake ioeventfds and MSI-X vectors routed by a real
// kvmirq.MSIRouter, wired as addPCIDevice and the root wire them.
type relocRig struct {
	bus    *devices.Bus
	pci    *pci.Bus
	events *fakeIOEvents
	gsis   *lastTable
	router *kvmirq.MSIRouter
	fns    []*relocFn
}

type relocFn struct {
	p       *virtio.PCI
	bar     *pciBAR
	w       *witness
	msixCap uint16
	gsi     uint32 // vector v is routed on gsi+v
}

const (
	relocSlots   = 3
	relocVectors = 2 // rng's one queue and config
	firstGSI     = 24
)

func newRelocRig(t testing.TB, mem *memory.RAM) *relocRig {
	r := &relocRig{bus: devices.NewBus("mmio"), pci: pci.NewBus(), events: &fakeIOEvents{set: map[string]bool{}}, gsis: &lastTable{}}
	r.router = kvmirq.NewMSIRouter(r.gsis, firstGSI)
	bars := barAllocator{next: pciMMIOStart, end: pciMMIOEnd}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for slot := range uint8(relocSlots) {
		gsi := r.router.NextGSI()
		vecs, err := r.router.Vectors(relocVectors)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := bars.alloc(virtio.BARSize)
		if err != nil {
			t.Fatal(err)
		}
		p, err := virtio.NewPCI(rng.New(), mem, virtio.PCIConfig{BARAddr: addr, MSI: vecs, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		fn := &relocFn{p: p, w: &witness{Device: p.BAR()}, gsi: gsi, msixCap: findCap(p.Function(), 0x11)}
		fn.bar = &pciBAR{name: fmt.Sprintf("slot %d", slot), size: virtio.BARSize, dev: fn.w, bus: r.bus, kvm: r.events, notify: p.Notifications()}
		if err := fn.bar.mapAt(addr); err != nil {
			t.Fatal(err)
		}
		p.ConfigSpace().OnRelocate(fn.bar.relocate)
		if err := r.pci.Add(slot+1, p.Function()); err != nil { // the host bridge may hold 0
			t.Fatal(err)
		}
		r.fns = append(r.fns, fn)
	}
	return r
}

// findCap walks the capability list (PCI 3.0 §6.7) for id.
func findCap(f pci.Function, id uint8) uint16 {
	var b [2]byte
	f.ReadConfig(0x34, b[:1])
	for pos, n := uint16(b[0]), 0; pos != 0 && n < 48; n++ {
		f.ReadConfig(pos, b[:])
		if b[0] == id {
			return pos
		}
		pos = uint16(b[1])
	}
	return 0
}

func (r *relocRig) close(t *testing.T) {
	for _, fn := range r.fns {
		if err := fn.p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.router.Close(); err != nil {
		t.Fatal(err)
	}
}

// Fuzz ops are 7 bytes: kind (bits 0–1: function, on PCI device 1 + its
// index, 3 being empty; bits 2–3:
// configuration write, configuration read, BAR write, BAR read; bits 4–5:
// width 1, 2, 4 or 8), offset u16, value u32. BAR accesses go through the
// MMIO bus at the slot's BAR address as its configuration space says.
const relocOpSize = 7

func relocOp(slot, kind, width int, off uint16, v uint32) []byte {
	b := []byte{byte(slot | kind<<2 | width<<4), 0, 0}
	binary.LittleEndian.PutUint16(b[1:], off)
	return binary.LittleEndian.AppendUint32(b, v)
}

const (
	relocCfgWrite = iota
	relocCfgRead
	relocBARWrite
	relocBARRead
)

// FuzzPCIRelocation moves BARs and programs MSI-X through configuration
// space and the MMIO bus, as a guest would. After every access the bus and
// KVM agree with configuration space: each BAR is mapped where its
// registers say or, if that range is taken, not at all; mapped BARs do not
// overlap and answer only for their own function; exactly the mapped BARs'
// notify registers have ioeventfds; and every unmasked MSI-X entry's
// message is what its GSI is routed to.
func FuzzPCIRelocation(f *testing.F) {
	mem, err := memory.New(memory.MiB)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	rig := newRelocRig(f, mem)
	msix := int(rig.fns[0].msixCap)
	f.Cleanup(func() {
		for _, fn := range rig.fns {
			fn.p.Close()
		}
		rig.router.Close()
	})
	f.Add(slices.Concat( // Linux sizing BAR 0 of slot 1, then moving it onto slot 0's
		relocOp(1, relocCfgWrite, 2, 0x10, 0xffffffff), relocOp(1, relocCfgWrite, 2, 0x14, 0xffffffff),
		relocOp(1, relocCfgRead, 2, 0x10, 0), relocOp(1, relocCfgWrite, 2, 0x10, uint32(pciMMIOStart)),
		relocOp(1, relocCfgWrite, 2, 0x14, 0), relocOp(0, relocCfgWrite, 2, 0x10, uint32(pciMMIOStart+0x100000)),
		relocOp(1, relocBARRead, 2, 0x7ff8, 0)))
	f.Add(slices.Concat( // MSI-X: enable masked, program entry 1, unmask it, move the BAR, rewrite
		relocOp(2, relocCfgWrite, 1, uint16(msix+2), 0xc000), relocOp(2, relocBARWrite, 2, 0x4010, 0xfee00000),
		relocOp(2, relocBARWrite, 2, 0x4018, 0x4041), relocOp(2, relocBARWrite, 2, 0x401c, 0),
		relocOp(2, relocCfgWrite, 1, uint16(msix+2), 0x8000), relocOp(2, relocCfgWrite, 2, 0x10, 0xd0000000),
		relocOp(2, relocCfgWrite, 2, 0x14, 0), relocOp(2, relocBARWrite, 2, 0x4018, 0x4042), relocOp(2, relocBARWrite, 3, 0x4000, 0xfee01000)))
	f.Add(slices.Concat( // a BAR moved to the top of the address space, and back
		relocOp(0, relocCfgWrite, 2, 0x14, 0xffffffff), relocOp(0, relocCfgWrite, 2, 0x10, 0xffff8000),
		relocOp(0, relocBARWrite, 1, 0x3000, 0), relocOp(0, relocCfgWrite, 2, 0x14, 0)))
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := newRelocRig(t, mem)
		defer r.close(t)
		for ; len(ops) >= relocOpSize; ops = ops[relocOpSize:] {
			r.run(ops[:relocOpSize])
			r.check(t)
		}
	})
}

func (r *relocRig) run(op []byte) {
	slot, kind, n := op[0]&3, op[0]>>2&3, 1<<(op[0]>>4&3)
	off := binary.LittleEndian.Uint16(op[1:])
	data := make([]byte, n)
	copy(data, op[3:])
	bdf := pci.BDF{Device: slot + 1}
	var base uint64
	if int(slot) < len(r.fns) {
		bar, _ := r.fns[slot].p.ConfigSpace().BAR(0)
		base = bar.Addr
	}
	switch kind {
	case relocCfgWrite:
		r.pci.WriteConfig(bdf, off, data)
	case relocCfgRead:
		r.pci.ReadConfig(bdf, off, data)
	case relocBARWrite:
		r.bus.Write(base+uint64(off), data)
	case relocBARRead:
		r.bus.Read(base+uint64(off), data)
	}
}

func (r *relocRig) check(t *testing.T) {
	var want []string
	for i, fn := range r.fns {
		bar, _ := fn.p.ConfigSpace().BAR(0)
		b := fn.bar
		fn.w.last = ^uint64(0)
		if b.addr != bar.Addr {
			t.Fatalf("slot %d: BAR 0 at %#x in configuration space, %#x on the bus", i, bar.Addr, b.addr)
		}
		if !b.mapped {
			if r.bus.Read(bar.Addr+virtio.BARSize-8, make([]byte, 8)) && fn.w.last == virtio.BARSize-8 {
				t.Fatalf("slot %d: an unmapped BAR answers at %#x", i, bar.Addr)
			}
			continue
		}
		for j, other := range r.fns[:i] {
			if other.bar.mapped && b.addr < other.bar.addr+virtio.BARSize && other.bar.addr < b.addr+virtio.BARSize {
				t.Fatalf("slots %d and %d are both mapped, at %#x and %#x", j, i, other.bar.addr, b.addr)
			}
		}
		if !r.bus.Read(b.addr+virtio.BARSize-8, make([]byte, 8)) || fn.w.last != virtio.BARSize-8 {
			t.Fatalf("slot %d: BAR mapped at %#x does not answer there", i, b.addr)
		}
		for _, n := range b.notify {
			want = append(want, key(n.Kick.FD(), b.addr+n.Offset))
		}
		r.checkRoutes(t, i, fn)
	}
	slices.Sort(want)
	if got := r.events.list(); !slices.Equal(got, want) {
		t.Fatalf("ioeventfds %v, want %v", got, want)
	}
}

// checkRoutes checks fn's unmasked MSI-X entries against the routing table.
func (r *relocRig) checkRoutes(t *testing.T, slot int, fn *relocFn) {
	for v := range relocVectors {
		var e [16]byte
		fn.w.Device.Read(0x4000+16*uint64(v), e[:8])
		fn.w.Device.Read(0x4000+16*uint64(v)+8, e[8:])
		le := binary.LittleEndian
		msg := kvm.MSIRoute{GSI: fn.gsi + uint32(v), Addr: le.Uint64(e[:]), Data: le.Uint32(e[8:])}
		if le.Uint32(e[12:])&1 != 0 {
			continue // masked: routed when unmasked
		}
		i := slices.IndexFunc(r.gsis.routes, func(e kvm.RoutingEntry) bool { m, ok := e.(kvm.MSIRoute); return ok && m.GSI == msg.GSI })
		if i < 0 && (msg.Addr != 0 || msg.Data != 0) || i >= 0 && r.gsis.routes[i] != msg {
			t.Fatalf("slot %d vector %d unmasked with %+v; route table %v", slot, v, msg, r.gsis.routes)
		}
	}
}
