package virtio_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
)

// activateMasked brings the device up with MSI-X enabled but every table
// entry still masked and programmed with nothing.
func activateMasked(t *testing.T) *guest {
	g := newGuest(t, newFakeDev(), guestOpts{})
	g.negotiate(virtio.FeatureVersion1)
	g.setMSIXControl(0x8000)
	g.wc(cMSIX, 2, 0)
	g.setupQueue(0, 256, 1)
	g.setupQueue(1, 64, 2)
	g.addStatus(virtio.StatusDriverOK)
	return g
}

func (g *guest) entry(v int) uint64 { return g.msixTable() + 16*uint64(v) }

func (g *guest) pba() uint64 { return g.barRead(g.msixPBA(), 8) }

func TestMSIXRoutesOnUnmask(t *testing.T) {
	g := activateMasked(t)
	m := msixMessage(1)
	g.barWrite(g.entry(1), 8, m.Addr) // a qword write covers both address dwords
	g.barWrite(g.entry(1)+8, 4, uint64(m.Data))
	if _, n, _ := g.msi.route(1); n != 0 {
		t.Fatalf("%d routes while the entry is masked", n)
	}
	g.barWrite(g.entry(1)+12, 4, 0xffff_fffe) // unmask; reserved bits stay zero
	if got, n, _ := g.msi.route(1); n != 1 || got != m {
		t.Fatalf("after unmask: %d routes, vector 1 → %+v, want one to %+v", n, got, m)
	}
	if c := g.barRead(g.entry(1)+12, 4); c != 0 {
		t.Errorf("vector control reads %#x, want 0", c)
	}
	if e := g.barRead(g.entry(1), 8); e != m.Addr {
		t.Errorf("qword read of the address = %#x", e)
	}
	// An entry rewritten while unmasked is rerouted at once.
	g.barWrite(g.entry(1)+8, 4, 0x99)
	if got, n, _ := g.msi.route(1); n != 2 || got.Data != 0x99 {
		t.Errorf("after rewrite: %d routes, data %#x", n, got.Data)
	}
}

func TestMSIXPendingBit(t *testing.T) {
	g := activateMasked(t)
	g.interruptQueue(0) // vector 1, masked
	if s := g.msi.takeSignals(); len(s) != 0 {
		t.Fatalf("masked vector signalled: %v", s)
	}
	if p := g.pba(); p != 1<<1 {
		t.Fatalf("PBA %#x, want bit 1", p)
	}
	g.barWrite(g.entry(1)+12, 4, 0)
	if s := g.msi.takeSignals(); !slices.Equal(s, []int{1}) {
		t.Errorf("unmask delivered %v, want [1]", s)
	}
	if p := g.pba(); p != 0 {
		t.Errorf("PBA %#x after delivery", p)
	}
	g.barWrite(g.msixPBA(), 8, ^uint64(0))
	if p := g.pba(); p != 0 {
		t.Errorf("PBA is writable: %#x", p)
	}
}

func TestMSIXFunctionMask(t *testing.T) {
	g := activateMasked(t)
	g.barWrite(g.entry(2)+12, 4, 0)
	g.setMSIXControl(0xc000)
	g.interruptQueue(1)
	if s := g.msi.takeSignals(); len(s) != 0 || g.pba() != 1<<2 {
		t.Fatalf("function masked: signals %v PBA %#x", s, g.pba())
	}
	g.setMSIXControl(0x8000)
	if s := g.msi.takeSignals(); !slices.Equal(s, []int{2}) || g.pba() != 0 {
		t.Errorf("function unmasked: signals %v PBA %#x, want [2] and 0", s, g.pba())
	}
}

func TestMSIXNoVector(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{})
	g.negotiate(virtio.FeatureVersion1)
	g.enableMSIX()
	g.setupQueue(0, 256, virtio.NoVector)
	g.addStatus(virtio.StatusDriverOK)
	g.interruptQueue(0)
	if s := g.msi.takeSignals(); len(s) != 0 || g.irq.level() || g.pba() != 0 {
		t.Errorf("NO_VECTOR queue interrupt: signals %v INTx %v PBA %#x", s, g.irq.level(), g.pba())
	}
}

func TestMSIXRouteFailureLogsOnce(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{})
	g.msi.fail = errBoom
	g.negotiate(virtio.FeatureVersion1)
	g.enableMSIX()
	if n := strings.Count(g.logs.String(), "cannot route"); n != 1 {
		t.Errorf("%d log lines for failed routes, want 1: %s", n, g.logs)
	}
}

func TestINTxAndISR(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{noMSI: true})
	g.negotiate(virtio.FeatureVersion1)
	if v := g.setupQueue(0, 256, 0); v != virtio.NoVector {
		t.Fatalf("queue vector reads %#x without MSI-X", v)
	}
	g.addStatus(virtio.StatusDriverOK)

	g.interruptQueue(0)
	if !g.irq.level() || g.cfgRead(0x06, 1)&0x08 == 0 {
		t.Fatal("queue interrupt: INTx or Interrupt Status not set")
	}
	if isr := g.readISR(); isr != 1 || g.irq.level() {
		t.Fatalf("ISR %#x, INTx %v after reading it; want 1 and low", isr, g.irq.level())
	}
	if isr := g.readISR(); isr != 0 {
		t.Errorf("second ISR read %#x, want 0", isr)
	}
	dev.last(t).ConfigChanged()
	if isr := g.readISR(); isr != 2 {
		t.Errorf("config change ISR %#x, want 2", isr)
	}

	g.cfgWrite(0x04, 2, 0x400) // Interrupt Disable
	g.interruptQueue(0)
	if g.irq.level() || g.cfgRead(0x06, 1)&0x08 == 0 {
		t.Error("INTx asserted while disabled in Command, or Interrupt Status not set")
	}
	g.cfgWrite(0x04, 2, 0)
	if !g.irq.level() {
		t.Error("pending interrupt not asserted when INTx re-enabled")
	}
	g.reset()
	if g.irq.level() || g.readISR() != 0 {
		t.Error("reset left an interrupt pending")
	}
}

func TestINTxWhenMSIXDisabled(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{})
	g.probe(virtio.FeatureVersion1)
	g.setMSIXControl(0)
	g.msi.takeSignals()
	g.interruptQueue(0)
	if s := g.msi.takeSignals(); len(s) != 0 || !g.irq.level() {
		t.Fatalf("MSI-X disabled: signals %v, INTx %v", s, g.irq.level())
	}
	g.setMSIXControl(0x8000)
	if g.irq.level() {
		t.Error("INTx stays asserted once MSI-X is enabled")
	}
}

func TestPCICfgWindow(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	pos := g.caps[5].pos
	window := func(bar uint8, off, n uint32) {
		g.cfgWrite(pos+4, 1, uint32(bar))
		g.cfgWrite(pos+8, 4, off)
		g.cfgWrite(pos+12, 4, n)
	}
	window(0, uint32(g.common(cNumQ)), 2)
	if v := g.cfgRead(pos+16, 2); v != uint32(len(dev.sizes)) {
		t.Errorf("num_queues through pci_cfg_data = %d", v)
	}
	window(0, uint32(g.common(cStatus)), 1)
	g.cfgWrite(pos+16, 1, virtio.StatusAcknowledge)
	if s := g.status(); s != virtio.StatusAcknowledge {
		t.Errorf("status %#x after a write through the window", s)
	}
	for _, w := range []struct {
		bar    uint8
		off, n uint32
	}{{1, 0x12, 2}, {0, 0x12, 3}, {0, 0x13, 2}, {0, virtio.BARSize, 4}, {0, 0xffff_fffe, 2}} {
		window(w.bar, w.off, w.n)
		if v := g.cfgRead(pos+16, 4); v != 0 {
			t.Errorf("window %+v reads %#x, want 0", w, v)
		}
		g.cfgWrite(pos+16, 4, 0xffffffff)
	}
	if s := g.status(); s != virtio.StatusAcknowledge {
		t.Errorf("invalid window writes changed status to %#x", s)
	}
}

// TestPCIConcurrentInterrupts races device workers raising interrupts
// against a driver masking vectors, toggling MSI-X and resetting; run with
// -race.
func TestPCIConcurrentInterrupts(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.probe(virtio.FeatureVersion1)
	a := dev.last(t)
	var wg sync.WaitGroup
	for q, vq := range a.Queues {
		wg.Go(func() {
			for i := range 500 {
				if err := vq.Push(uint16(i)%dev.sizes[q], 0); err != nil {
					t.Error(err)
					return
				}
				vq.Notify()
				a.ConfigChanged()
			}
		})
	}
	for i := range 500 {
		g.barWrite(g.entry(i%3)+12, 4, uint64(i&1))
		g.setMSIXControl(uint16(0x8000 * (i % 3 & 1)))
		g.readISR()
		g.rc(cStatus, 1)
	}
	wg.Wait()
	g.reset()
}
