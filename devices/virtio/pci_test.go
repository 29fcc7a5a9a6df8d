package virtio_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// offered is what every fakeDev's transport offers.
func offered(d *fakeDev) uint64 {
	return d.features | virtio.FeatureVersion1 | virtio.FeatureRingEventIdx | virtio.FeatureRingIndirectDesc
}

func TestPCIIdentity(t *testing.T) {
	for _, c := range []struct {
		typ   virtio.DeviceType
		class uint32
	}{
		{virtio.TypeNet, 0x020000}, {virtio.TypeBlock, 0x010000},
		{virtio.TypeConsole, 0x078000}, {virtio.TypeRNG, 0x00ff00},
	} {
		dev := newFakeDev()
		dev.typ = c.typ
		g := newGuest(t, dev, guestOpts{})
		want := map[uint16]uint32{0x00: 0x1af4, 0x02: 0x1040 + uint32(c.typ), 0x2c: 0x1af4, 0x2e: 0x40}
		for reg, v := range want {
			if got := g.cfgRead(reg, 2); got != v {
				t.Errorf("type %d: register %#x = %#x, want %#x", c.typ, reg, got, v)
			}
		}
		if rev, class := g.cfgRead(0x08, 1), g.cfgRead(0x08, 4)>>8; rev != 1 || class != c.class {
			t.Errorf("type %d: revision %d class %#x, want 1 and %#x", c.typ, rev, class, c.class)
		}
		if pin, line := g.cfgRead(0x3d, 1), g.cfgRead(0x3c, 1); pin != 1 || line != 11 {
			t.Errorf("interrupt pin %d line %d, want INTA# on 11", pin, line)
		}
	}
}

func TestPCIBAR0Sizing(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{})
	if lo, hi := g.cfgRead(0x10, 4), g.cfgRead(0x14, 4); lo != barAddr|0x4 || hi != 0 {
		t.Fatalf("BAR 0 = %#x:%#x, want 64-bit non-prefetchable memory at %#x", hi, lo, barAddr)
	}
	g.cfgWrite(0x10, 4, 0xffffffff)
	g.cfgWrite(0x14, 4, 0xffffffff)
	size := ^(uint64(g.cfgRead(0x14, 4))<<32 | uint64(g.cfgRead(0x10, 4)&^0xf)) + 1
	if size != virtio.BARSize || size&(size-1) != 0 {
		t.Fatalf("BAR 0 sizes to %#x, want %#x", size, virtio.BARSize)
	}
}

func TestPCIWithoutINTxOrMSIX(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{noINTx: true})
	if pin := g.cfgRead(0x3d, 1); pin != 0 {
		t.Errorf("interrupt pin %d without INTx, want 0", pin)
	}
	g = newGuest(t, newFakeDev(), guestOpts{noMSI: true})
	if g.msixCap != 0 {
		t.Error("MSI-X capability present without MSIVectors")
	}
	g.wc(cMSIX, 2, 0)
	if v := g.rc(cMSIX, 2); v != virtio.NoVector {
		t.Errorf("config_msix_vector reads %#x without MSI-X, want NO_VECTOR", v)
	}
}

func TestPCICapabilities(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	for typ, minLen := range map[uint8]uint32{1: 0x38, 2: 2 * 4, 3: 1, 4: 16, 5: 0} {
		c, ok := g.caps[typ]
		if !ok {
			t.Fatalf("no virtio capability of cfg_type %d", typ)
		}
		if typ == 5 {
			continue // the window's fields are the driver's
		}
		if c.bar != 0 || c.lengt < minLen || uint64(c.offset)+uint64(c.lengt) > virtio.BARSize {
			t.Errorf("cfg_type %d: bar %d [%#x, +%#x) does not fit BAR 0", typ, c.bar, c.offset, c.lengt)
		}
		if typ == 1 && c.offset != 0 {
			t.Errorf("common configuration at %#x; the fuzz target expects 0", c.offset)
		}
		if c.offset%4 != 0 {
			t.Errorf("cfg_type %d: offset %#x is not dword aligned", typ, c.offset)
		}
	}
	if l := g.cfgRead(g.caps[2].pos+2, 1); l != 20 || g.notifyMul != 4 {
		t.Errorf("notify cap_len %d multiplier %d, want 20 and 4", l, g.notifyMul)
	}
	if g.msixCap == 0 {
		t.Fatal("no MSI-X capability")
	}
	if n := int(g.msixControl()&0x7ff) + 1; n != len(dev.sizes)+1 {
		t.Errorf("MSI-X table size %d, want one vector per queue and one for config (%d)", n, len(dev.sizes)+1)
	}
	table, pba := g.cfgRead(g.msixCap+4, 4), g.cfgRead(g.msixCap+8, 4)
	if table&7 != 0 || pba&7 != 0 || table+16*3 > pba || uint64(pba)+8 > virtio.BARSize {
		t.Errorf("MSI-X table %#x PBA %#x: want both in BAR 0, apart", table, pba)
	}
	// Table size and the reserved bits are read-only; Enable and Function Mask are not.
	g.setMSIXControl(0xffff)
	if c := g.msixControl(); c != 0xc000|uint16(len(dev.sizes)) {
		t.Errorf("Message Control reads %#x after writing all ones", c)
	}
}

func TestPCINotifications(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	notes := g.p.Notifications()
	if len(notes) != len(dev.sizes) {
		t.Fatalf("%d notifications for %d queues", len(notes), len(dev.sizes))
	}
	for q, n := range notes {
		g.wc(cQSelect, 2, uint64(q))
		want := uint64(g.caps[2].offset) + g.rc(cQNotifyOff, 2)*uint64(g.notifyMul)
		if n.Offset != want {
			t.Errorf("queue %d notify at %#x, capability says %#x", q, n.Offset, want)
		}
		g.barWrite(n.Offset, 2, uint64(q)) // no ioeventfd: the write reaches the BAR
		if v, err := n.Kick.Read(); err != nil || v != 1 {
			t.Errorf("queue %d kick eventfd = %d, %v after a notify write", q, v, err)
		}
	}
}

func TestPCILinuxProbe(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	if f := g.deviceFeatures(); f != offered(dev) {
		t.Fatalf("device_feature %#x, want %#x", f, offered(dev))
	}
	want := uint64(virtio.FeatureVersion1 | virtio.FeatureRingEventIdx | 1<<9)
	g.probe(want)
	if n := g.rc(cNumQ, 2); n != uint64(len(dev.sizes)) {
		t.Errorf("num_queues %d", n)
	}
	a := dev.last(t)
	if a.Features != want || a.Mem != g.mem || a.ConfigChanged == nil || len(a.Queues) != len(dev.sizes) {
		t.Fatalf("activation features %#x mem %p queues %d, want %#x %p %d",
			a.Features, a.Mem, len(a.Queues), want, g.mem, len(dev.sizes))
	}
	for q, vq := range a.Queues {
		if vq == nil || vq.Mem() != g.mem {
			t.Errorf("queue %d not handed to the device", q)
		}
	}
	for v := range len(dev.sizes) + 1 {
		if m, _, ok := g.msi.route(v); !ok || m != msixMessage(v) {
			t.Errorf("vector %d routed to %+v (%v), want %+v", v, m, ok, msixMessage(v))
		}
	}
	g.interruptQueue(1)
	if s := g.msi.takeSignals(); !slices.Equal(s, []int{2}) {
		t.Errorf("queue 1 interrupt signalled vectors %v, want [2]", s)
	}
	if g.irq.level() {
		t.Error("INTx asserted with MSI-X enabled")
	}
	if act, resets := dev.counts(); act != 1 || resets != 1 { // one reset from the probe
		t.Errorf("%d activations and %d resets, want 1 and 1", act, resets)
	}
}

func TestPCIOnlyEnabledQueuesActivate(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.negotiate(^uint64(0))
	g.setupQueue(0, 128, virtio.NoVector)
	g.addStatus(virtio.StatusDriverOK)
	a := dev.last(t)
	if a.Queues[0] == nil || a.Queues[1] != nil {
		t.Fatalf("queues %v: want only queue 0", a.Queues)
	}
}

func TestPCIFeaturesOKRefused(t *testing.T) {
	dev := newFakeDev()
	for name, f := range map[string]uint64{
		"not offered":  virtio.FeatureVersion1 | 1<<40,
		"no VERSION_1": 1 << 9,
	} {
		t.Run(name, func(t *testing.T) {
			g := newGuest(t, dev, guestOpts{})
			g.reset()
			g.addStatus(virtio.StatusAcknowledge | virtio.StatusDriver)
			g.setDriverFeatures(f)
			g.addStatus(virtio.StatusFeaturesOK)
			if s := g.status(); s != virtio.StatusAcknowledge|virtio.StatusDriver {
				t.Fatalf("status %#x after refused FEATURES_OK", s)
			}
			// Linux gives up here; a driver that carries on breaks the device.
			g.addStatus(virtio.StatusDriverOK)
			if s := g.status(); s&virtio.StatusDriverOK != 0 || s&virtio.StatusNeedsReset == 0 {
				t.Errorf("status %#x after DRIVER_OK without FEATURES_OK", s)
			}
			if n, _ := dev.counts(); n != 0 {
				t.Error("device activated without FEATURES_OK")
			}
		})
	}
}

func TestPCIFeaturesFrozenAtFeaturesOK(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{})
	g.negotiate(virtio.FeatureVersion1)
	g.setDriverFeatures(virtio.FeatureVersion1 | 1<<9)
	g.wc(cGFSelect, 4, 0)
	if f := g.rc(cGF, 4); f != 0 {
		t.Errorf("driver_feature changed after FEATURES_OK: %#x", f)
	}
	g.wc(cGFSelect, 4, 7)
	g.wc(cDFSelect, 4, 7)
	if g.rc(cGF, 4) != 0 || g.rc(cDF, 4) != 0 {
		t.Error("a feature select past 1 reads non-zero features")
	}
}

func TestPCIStatusBits(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{})
	g.wc(cStatus, 1, virtio.StatusNeedsReset|virtio.StatusAcknowledge)
	if s := g.status(); s != virtio.StatusAcknowledge {
		t.Errorf("driver set DEVICE_NEEDS_RESET: status %#x", s)
	}
	g.wc(cStatus, 1, virtio.StatusDriver) // bits are never cleared but by reset
	if s := g.status(); s != virtio.StatusAcknowledge|virtio.StatusDriver {
		t.Errorf("status %#x, want ACKNOWLEDGE|DRIVER", s)
	}
}

func TestPCIQueueRegisters(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	for q, max := range dev.sizes {
		g.wc(cQSelect, 2, uint64(q))
		got := []uint64{g.rc(cQSize, 2), g.rc(cQMSIX, 2), g.rc(cQEnable, 2), g.rc(cQNotifyOff, 2), g.rc(cQDesc, 8)}
		if want := []uint64{uint64(max), virtio.NoVector, 0, uint64(q), 0}; !slices.Equal(got, want) {
			t.Errorf("queue %d registers %#x, want %#x", q, got, want)
		}
	}
	g.wc(cQSelect, 2, 0)
	for _, bad := range []uint64{0, 3, 512, 0xffff} {
		g.wc(cQSize, 2, bad)
	}
	if s := g.rc(cQSize, 2); s != 256 {
		t.Errorf("queue_size %d after invalid sizes, want it unchanged", s)
	}
	g.wc(cQSize, 2, 16)
	g.wc(cQMSIX, 2, 3) // table has vectors 0..2
	if s, v := g.rc(cQSize, 2), g.rc(cQMSIX, 2); s != 16 || v != virtio.NoVector {
		t.Errorf("queue_size %d vector %#x, want 16 and NO_VECTOR", s, v)
	}
	g.wc(cQDesc, 8, 0x1122_3344_5566_7788)
	g.wc(cQDriver+4, 4, 0xaabbccdd)
	if d, dr := g.rc(cQDesc, 8), g.rc(cQDriver, 8); d != 0x1122_3344_5566_7788 || dr != 0xaabbccdd_00000000 {
		t.Errorf("queue_desc %#x queue_driver %#x", d, dr)
	}
	if hi := g.rc(cQDesc+4, 4); hi != 0x11223344 {
		t.Errorf("upper half of queue_desc reads %#x", hi)
	}

	g.wc(cQSelect, 2, 2) // past the last queue
	g.wc(cQSize, 2, 1)
	g.wc(cQEnable, 2, 1)
	if s, e := g.rc(cQSize, 2), g.rc(cQEnable, 2); s != 0 || e != 0 {
		t.Errorf("missing queue reads size %d enable %d, want 0", s, e)
	}
	if g.rc(cQSelect, 2) != 2 {
		t.Error("queue_select does not read back")
	}
}

func TestPCIQueueFrozenAfterDriverOK(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.probe(virtio.FeatureVersion1)
	g.wc(cQSelect, 2, 0)
	before := []uint64{g.rc(cQSize, 2), g.rc(cQMSIX, 2), g.rc(cQDesc, 8)}
	g.wc(cQSize, 2, 8)
	g.wc(cQMSIX, 2, 0)
	g.wc(cQDesc, 8, 0x2000)
	if after := []uint64{g.rc(cQSize, 2), g.rc(cQMSIX, 2), g.rc(cQDesc, 8)}; !slices.Equal(before, after) {
		t.Errorf("queue registers changed after DRIVER_OK: %#x → %#x", before, after)
	}
	g.addStatus(virtio.StatusDriverOK)
	if n, _ := dev.counts(); n != 1 {
		t.Errorf("%d activations: setting DRIVER_OK again restarted the device", n)
	}
}

func TestPCIReset(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.probe(virtio.FeatureVersion1 | 1<<1)
	g.wc(cQSelect, 2, 1)
	g.reset()
	if _, resets := dev.counts(); resets != 2 {
		t.Errorf("Device.Reset called %d times, want 2 (probe, reset)", resets)
	}
	g.wc(cGFSelect, 4, 0)
	got := []uint64{g.rc(cMSIX, 2), g.rc(cQSelect, 2), g.rc(cGF, 4), g.rc(cQMSIX, 2), g.rc(cQEnable, 2), g.rc(cQDesc, 8)}
	if want := []uint64{virtio.NoVector, 0, 0, virtio.NoVector, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("after reset: %#x, want %#x", got, want)
	}
	// The MSI-X table is PCI state and survives a virtio reset.
	if c := g.barRead(g.msixTable()+8, 4); c != uint64(msixMessage(0).Data) {
		t.Errorf("MSI-X entry 0 data %#x after reset", c)
	}
	g.probe(virtio.FeatureVersion1)
	if a := dev.last(t); a.Features != virtio.FeatureVersion1 || dev.doubleStart {
		t.Errorf("second activation features %#x, restarted without reset %v", a.Features, dev.doubleStart)
	}
}

func TestPCIActivationFailures(t *testing.T) {
	t.Run("bad ring", func(t *testing.T) {
		dev := newFakeDev()
		g := newGuest(t, dev, guestOpts{})
		g.negotiate(virtio.FeatureVersion1)
		g.setupQueue(0, 256, virtio.NoVector)
		g.wc(cQDesc, 8, 0x1_0000_0000_0008) // outside RAM, misaligned
		g.addStatus(virtio.StatusDriverOK)
		if n, _ := dev.counts(); n != 0 || g.status()&virtio.StatusNeedsReset == 0 {
			t.Errorf("%d activations, status %#x: want none and DEVICE_NEEDS_RESET", n, g.status())
		}
		if !strings.Contains(g.logs.String(), "queue 0") {
			t.Errorf("log does not name the queue: %q", g.logs)
		}
	})
	t.Run("device error", func(t *testing.T) {
		dev := newFakeDev()
		dev.activateErr = errBoom
		g := newGuest(t, dev, guestOpts{})
		g.negotiate(virtio.FeatureVersion1)
		g.addStatus(virtio.StatusDriverOK)
		if g.status()&virtio.StatusNeedsReset == 0 || !strings.Contains(g.logs.String(), "boom") {
			t.Errorf("status %#x log %q after Activate failed", g.status(), g.logs)
		}
	})
}

func TestPCIBroken(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.probe(virtio.FeatureVersion1)
	g.msi.takeSignals()
	a := dev.last(t)
	a.Queues[0].Fail(errBoom)
	a.Queues[1].Fail(errBoom)
	if s := g.status(); s&virtio.StatusNeedsReset == 0 || s&virtio.StatusDriverOK == 0 {
		t.Errorf("status %#x, want DRIVER_OK|DEVICE_NEEDS_RESET", s)
	}
	if s := g.msi.takeSignals(); !slices.Equal(s, []int{0}) {
		t.Errorf("signals %v, want one configuration interrupt on vector 0", s)
	}
	if n := strings.Count(g.logs.String(), "needs reset"); n != 1 {
		t.Errorf("%d log lines for two broken queues, want 1: %q", n, g.logs)
	}
	g.reset()
	g.probe(virtio.FeatureVersion1)
	if g.status()&virtio.StatusNeedsReset != 0 {
		t.Error("DEVICE_NEEDS_RESET survived a reset")
	}
}

// A driver that breaks the device, resets it and breaks it again, as fast
// as it can, gets one log line a second, not one per reset.
func TestPCIBrokenAfterEveryResetLogsRateLimited(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	for range 50 {
		g.reset()
		g.addStatus(virtio.StatusAcknowledge | virtio.StatusDriver | virtio.StatusDriverOK) // no FEATURES_OK: broken
		if g.status()&virtio.StatusNeedsReset == 0 {
			t.Fatalf("status %#x: DRIVER_OK without FEATURES_OK did not break the device", g.status())
		}
	}
	if n := strings.Count(g.logs.String(), "needs reset"); n != 1 {
		t.Errorf("%d log lines for 50 breaks in a row, want 1 (a second's worth): %q", n, g.logs)
	}
}

func TestPCIConfigChanged(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.probe(virtio.FeatureVersion1)
	g.msi.takeSignals()
	gen := g.rc(cGeneration, 1)
	dev.last(t).ConfigChanged()
	if g.rc(cGeneration, 1) != (gen+1)&0xff {
		t.Error("config_generation did not change")
	}
	if s := g.msi.takeSignals(); !slices.Equal(s, []int{0}) {
		t.Errorf("signals %v, want config vector 0", s)
	}
}

func TestPCIDeviceConfig(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	dev.config = [16]byte{1, 2, 3, 4, 5, 6, 7, 8}
	if v := g.deviceCfg(0, 8); v != 0x0807060504030201 {
		t.Errorf("device config u64 = %#x", v)
	}
	if v := g.deviceCfg(6, 2); v != 0x0807 {
		t.Errorf("device config u16 at 6 = %#x", v)
	}
	g.barWrite(uint64(g.caps[4].offset)+12, 4, 0xdeadbeef)
	if v := g.deviceCfg(12, 4); v != 0xdeadbeef {
		t.Errorf("device config write read back %#x", v)
	}
	if v := g.deviceCfg(3, 2); v != 0 {
		t.Errorf("unaligned device config read = %#x, want 0", v)
	}
}

func TestPCIClose(t *testing.T) {
	dev := newFakeDev()
	mem, err := memory.New(memory.MiB)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	p, err := virtio.NewPCI(dev, mem, virtio.PCIConfig{BARAddr: barAddr, MSI: &fakeMSI{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, resets := dev.counts(); resets != 1 {
		t.Errorf("Close reset the device %d times, want 1", resets)
	}
	p.BAR().Write(0x14, []byte{virtio.StatusAcknowledge}) // after Close: dropped
	p.BAR().Write(p.Notifications()[0].Offset, []byte{0, 0})
	var b [1]byte
	p.BAR().Read(0x14, b[:])
	if b[0] != 0 {
		t.Errorf("status %#x written after Close", b[0])
	}
}

func TestNewPCIErrors(t *testing.T) {
	mem, err := memory.New(memory.MiB)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	ok := virtio.PCIConfig{BARAddr: barAddr, MSI: &fakeMSI{}}
	for name, c := range map[string]struct {
		sizes []uint16
		cfg   virtio.PCIConfig
	}{
		"no queues":       {nil, ok},
		"size 0":          {[]uint16{0}, ok},
		"size 3":          {[]uint16{3}, ok},
		"too many queues": {make([]uint16, 300), ok},
		"no interrupts":   {[]uint16{8}, virtio.PCIConfig{BARAddr: barAddr}},
		"bad pin":         {[]uint16{8}, virtio.PCIConfig{BARAddr: barAddr, INTx: &fakeIRQ{}, INTxPin: 5}},
		"misaligned BAR":  {[]uint16{8}, virtio.PCIConfig{BARAddr: barAddr + 0x1000, MSI: &fakeMSI{}}},
	} {
		dev := newFakeDev()
		dev.sizes = c.sizes
		if p, err := virtio.NewPCI(dev, mem, c.cfg); err == nil {
			p.Close()
			t.Errorf("%s: NewPCI succeeded", name)
		} else if name != "misaligned BAR" && !errors.Is(err, virtio.ErrBadDevice) {
			t.Errorf("%s: %v does not wrap ErrBadDevice", name, err)
		}
	}
}

// QueueStats counts per queue through the transport, and the counts outlive
// a driver reset (they are the VM's, not the device's).
func TestPCIQueueStats(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.probe(virtio.FeatureVersion1)
	g.interruptQueue(1)
	g.reset()
	g.probe(virtio.FeatureVersion1)
	g.interruptQueue(1)
	s := g.p.QueueStats()
	if len(s) != len(dev.sizes) {
		t.Fatalf("%d queue stats for %d queues", len(s), len(dev.sizes))
	}
	if want := (virtio.QueueStats{Interrupts: 2}); s[1] != want || s[0] != (virtio.QueueStats{}) {
		t.Errorf("QueueStats() = %+v, want queue 1 %+v and queue 0 zero", s, want)
	}
}
