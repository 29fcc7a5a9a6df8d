package virtio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// fakeDev is a virtio Device that records what the transport asks of it.
type fakeDev struct {
	typ      virtio.DeviceType
	features uint64
	sizes    []uint16

	mu          sync.Mutex
	config      [16]byte
	active      bool
	activations []virtio.Activation
	resets      int
	activateErr error
	doubleStart bool // Activate was called on an active device
}

func newFakeDev() *fakeDev {
	return &fakeDev{typ: virtio.TypeBlock, features: 1<<1 | 1<<9, sizes: []uint16{256, 64}}
}

func (d *fakeDev) Type() virtio.DeviceType { return d.typ }
func (d *fakeDev) Features() uint64        { return d.features }
func (d *fakeDev) QueueMaxSizes() []uint16 { return d.sizes }

func (d *fakeDev) ReadConfig(off uint64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(data)
	if off < uint64(len(d.config)) {
		copy(data, d.config[off:])
	}
}

func (d *fakeDev) WriteConfig(off uint64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < uint64(len(d.config)) {
		copy(d.config[off:], data)
	}
}

func (d *fakeDev) Activate(a virtio.Activation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.doubleStart = d.doubleStart || d.active
	d.activations = append(d.activations, a)
	if d.activateErr != nil {
		return d.activateErr
	}
	d.active = true
	return nil
}

func (d *fakeDev) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resets++
	d.active = false
}

// last returns the latest activation; it fails the test if there is none.
func (d *fakeDev) last(t testing.TB) virtio.Activation {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.activations) == 0 {
		t.Fatal("device was never activated")
	}
	return d.activations[len(d.activations)-1]
}

func (d *fakeDev) counts() (activations, resets int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.activations), d.resets
}

// fakeMSI records routes and signals.
type fakeMSI struct {
	mu      sync.Mutex
	routes  map[int]devices.MSIMessage
	nroutes int
	signals []int
	fail    error
}

func (m *fakeMSI) Route(v int, msg devices.MSIMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.routes == nil {
		m.routes = map[int]devices.MSIMessage{}
	}
	m.routes[v] = msg
	m.nroutes++
	return nil
}

func (m *fakeMSI) Signal(v int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signals = append(m.signals, v)
	return m.fail
}

// takeSignals returns the vectors signalled since the last call.
func (m *fakeMSI) takeSignals() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.signals
	m.signals = nil
	return s
}

func (m *fakeMSI) route(v int) (devices.MSIMessage, int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg, ok := m.routes[v]
	return msg, m.nroutes, ok
}

// fakeIRQ is an INTx line.
type fakeIRQ struct {
	mu    sync.Mutex
	high  bool
	edges int
}

func (l *fakeIRQ) SetLevel(high bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if high && !l.high {
		l.edges++
	}
	l.high = high
}

func (l *fakeIRQ) level() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.high
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// vcap is one virtio_pci_cap as the driver found it.
type vcap struct {
	pos           uint16 // offset in configuration space
	bar           uint8
	offset, lengt uint32
}

// guest plays the Linux virtio-pci modern driver against one transport,
// finding every structure through the capability list as Linux does
// (drivers/virtio/virtio_pci_modern_dev.c).
type guest struct {
	t    testing.TB
	dev  *fakeDev
	msi  *fakeMSI
	irq  *fakeIRQ
	logs *syncBuffer
	mem  *memory.RAM
	p    *virtio.PCI
	fn   pci.Function
	bar  devices.Device

	caps      map[uint8]vcap // by cfg_type
	msixCap   uint16
	notifyMul uint32
}

const barAddr = 0xe000_0000

// guestOpts picks which interrupt paths the function has.
type guestOpts struct{ noMSI, noINTx bool }

func newGuest(t testing.TB, dev *fakeDev, o guestOpts) *guest {
	t.Helper()
	mem, err := memory.New(4 * memory.MiB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	g := &guest{t: t, dev: dev, msi: &fakeMSI{}, irq: &fakeIRQ{}, logs: &syncBuffer{}, mem: mem}
	cfg := virtio.PCIConfig{
		BARAddr: barAddr, MSI: g.msi, INTx: g.irq, INTxLine: 11,
		Log: slog.New(slog.NewTextHandler(g.logs, nil)),
	}
	if o.noMSI {
		cfg.MSI = nil
	}
	if o.noINTx {
		cfg.INTx = nil
	}
	g.p, err = virtio.NewPCI(dev, mem, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.p.Close(); err != nil {
			t.Error(err)
		}
	})
	g.fn, g.bar = g.p.Function(), g.p.BAR()
	g.findCaps()
	return g
}

func (g *guest) cfgRead(reg uint16, n int) uint32 {
	var b [4]byte
	g.fn.ReadConfig(reg, b[:n])
	return binary.LittleEndian.Uint32(b[:])
}

func (g *guest) cfgWrite(reg uint16, n int, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	g.fn.WriteConfig(reg, b[:n])
}

func (g *guest) barRead(off uint64, n int) uint64 {
	var b [8]byte
	for i := range b {
		b[i] = 0xa5 // a read must overwrite every byte
	}
	g.bar.Read(off, b[:n])
	clear(b[n:])
	return binary.LittleEndian.Uint64(b[:])
}

func (g *guest) barWrite(off uint64, n int, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	g.bar.Write(off, b[:n])
}

// findCaps walks the capability list (PCI 3.0 §6.7).
func (g *guest) findCaps() {
	g.caps = map[uint8]vcap{}
	seen := 0
	for pos := uint16(g.cfgRead(0x34, 1)); pos != 0; pos = uint16(g.cfgRead(pos+1, 1)) {
		if seen++; seen > 48 || pos < 0x40 || pos&3 != 0 {
			g.t.Fatalf("capability list is broken at %#x", pos)
		}
		switch g.cfgRead(pos, 1) {
		case 0x11:
			g.msixCap = pos
		case 0x09:
			typ := uint8(g.cfgRead(pos+3, 1))
			if _, dup := g.caps[typ]; dup {
				g.t.Fatalf("two virtio capabilities of cfg_type %d", typ)
			}
			g.caps[typ] = vcap{pos: pos, bar: uint8(g.cfgRead(pos+4, 1)), offset: g.cfgRead(pos+8, 4), lengt: g.cfgRead(pos+12, 4)}
			if typ == 2 {
				g.notifyMul = g.cfgRead(pos+16, 4)
			}
		}
	}
}

// Common configuration register offsets (virtio 1.2 §4.1.4.3).
const (
	cDFSelect   = 0x00
	cDF         = 0x04
	cGFSelect   = 0x08
	cGF         = 0x0c
	cMSIX       = 0x10
	cNumQ       = 0x12
	cStatus     = 0x14
	cGeneration = 0x15
	cQSelect    = 0x16
	cQSize      = 0x18
	cQMSIX      = 0x1a
	cQEnable    = 0x1c
	cQNotifyOff = 0x1e
	cQDesc      = 0x20
	cQDriver    = 0x28
	cQDevice    = 0x30
)

func (g *guest) common(reg uint64) uint64 { return uint64(g.caps[1].offset) + reg }

func (g *guest) rc(reg uint64, n int) uint64    { return g.barRead(g.common(reg), n) }
func (g *guest) wc(reg uint64, n int, v uint64) { g.barWrite(g.common(reg), n, v) }
func (g *guest) status() uint8                  { return uint8(g.rc(cStatus, 1)) }
func (g *guest) addStatus(bits uint8)           { g.wc(cStatus, 1, uint64(g.status()|bits)) }
func (g *guest) readISR() uint8                 { return uint8(g.barRead(uint64(g.caps[3].offset), 1)) }
func (g *guest) deviceCfg(off uint64, n int) uint64 {
	return g.barRead(uint64(g.caps[4].offset)+off, n)
}

// reset is vp_reset: write 0, then wait for device_status to read 0.
func (g *guest) reset() {
	g.wc(cStatus, 1, 0)
	if s := g.status(); s != 0 {
		g.t.Fatalf("device_status reads %#x after reset, want 0", s)
	}
}

func (g *guest) deviceFeatures() uint64 {
	g.wc(cDFSelect, 4, 0)
	lo := g.rc(cDF, 4)
	g.wc(cDFSelect, 4, 1)
	return lo | g.rc(cDF, 4)<<32
}

func (g *guest) setDriverFeatures(f uint64) {
	g.wc(cGFSelect, 4, 0)
	g.wc(cGF, 4, f&0xffffffff)
	g.wc(cGFSelect, 4, 1)
	g.wc(cGF, 4, f>>32)
}

// negotiate is virtio_dev_probe up to FEATURES_OK: it accepts want ∩ offered
// and reports whether the device kept FEATURES_OK.
func (g *guest) negotiate(want uint64) bool {
	g.reset()
	g.addStatus(virtio.StatusAcknowledge)
	g.addStatus(virtio.StatusDriver)
	g.setDriverFeatures(g.deviceFeatures() & want)
	g.addStatus(virtio.StatusFeaturesOK)
	return g.status()&virtio.StatusFeaturesOK != 0
}

// msixMessage is the message the guest programs for vector v.
func msixMessage(v int) devices.MSIMessage {
	return devices.MSIMessage{Addr: 0xfee0_0000 | uint64(v)<<12, Data: 0x4030 + uint32(v)}
}

func (g *guest) msixTable() uint64 { return uint64(g.cfgRead(g.msixCap+4, 4) &^ 7) }
func (g *guest) msixPBA() uint64   { return uint64(g.cfgRead(g.msixCap+8, 4) &^ 7) }
func (g *guest) msixControl() uint16 {
	return uint16(g.cfgRead(g.msixCap+2, 2))
}
func (g *guest) setMSIXControl(v uint16) { g.cfgWrite(g.msixCap+2, 2, uint32(v)) }

// enableMSIX is msix_capability_init: enable with the function masked,
// program every entry (masked), then unmask the function and, as
// request_irq does, each entry.
func (g *guest) enableMSIX() {
	n := int(g.msixControl()&0x7ff) + 1
	g.setMSIXControl(0x8000 | 0x4000)
	for v := range n {
		e := g.msixTable() + 16*uint64(v)
		m := msixMessage(v)
		g.barWrite(e, 4, m.Addr&0xffffffff)
		g.barWrite(e+4, 4, m.Addr>>32)
		g.barWrite(e+8, 4, uint64(m.Data))
	}
	g.setMSIXControl(0x8000)
	for v := range n {
		g.barWrite(g.msixTable()+16*uint64(v)+12, 4, 0)
	}
}

// ringBase is where queue q's rings go in guest RAM: low, so that a fuzz
// target's guest RAM can be small enough to compare whole after each op.
func ringBase(q int) uint64 { return 0x1_0000 + uint64(q)*0x1_0000 }

// setupQueue is vp_modern setup_vq for queue q with the given size and
// vector, then queue_enable; it returns the vector read back.
func (g *guest) setupQueue(q int, size uint16, vector uint16) uint16 {
	g.wc(cQSelect, 2, uint64(q))
	if g.rc(cQSize, 2) == 0 || g.rc(cQEnable, 2) != 0 {
		g.t.Fatalf("queue %d: missing or already enabled", q)
	}
	g.wc(cQSize, 2, uint64(size))
	base := ringBase(q)
	for i, reg := range []uint64{cQDesc, cQDriver, cQDevice} {
		addr := base + uint64(i)*0x4000
		g.wc(reg, 4, addr&0xffffffff) // vp_iowrite64_twopart
		g.wc(reg+4, 4, addr>>32)
	}
	g.wc(cQMSIX, 2, uint64(vector))
	got := uint16(g.rc(cQMSIX, 2))
	g.wc(cQEnable, 2, 1)
	return got
}

// probe is the Linux driver bringing the device up with MSI-X: negotiate,
// one vector for config (0) and one per queue (1+q), every queue enabled,
// DRIVER_OK.
func (g *guest) probe(want uint64) {
	g.t.Helper()
	if !g.negotiate(want) {
		g.t.Fatal("device refused FEATURES_OK")
	}
	g.enableMSIX()
	g.wc(cMSIX, 2, 0)
	if v := g.rc(cMSIX, 2); v != 0 {
		g.t.Fatalf("config_msix_vector reads %#x, want 0", v)
	}
	for q := range g.dev.sizes {
		if v := g.setupQueue(q, g.dev.sizes[q], uint16(1+q)); v != uint16(1+q) {
			g.t.Fatalf("queue %d msix vector reads %#x", q, v)
		}
	}
	g.addStatus(virtio.StatusDriverOK)
	if s := g.status(); s&virtio.StatusNeedsReset != 0 {
		g.t.Fatalf("device needs reset after DRIVER_OK: %s", g.logs)
	}
}

// interruptQueue makes queue q of the latest activation raise an interrupt
// the way a device worker does: push a used buffer, then Notify.
func (g *guest) interruptQueue(q int) {
	g.t.Helper()
	vq := g.dev.last(g.t).Queues[q]
	if err := vq.Push(0, 0); err != nil {
		g.t.Fatal(err)
	}
	vq.Notify()
}

var errBoom = errors.New("boom")
