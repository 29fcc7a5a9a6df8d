package virtio_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// snapshot reads every register a driver can read without side effects.
func (g *guest) snapshot() string {
	var b strings.Builder
	for reg := uint16(0); reg < 256; reg += 4 {
		fmt.Fprintf(&b, "%08x", g.cfgRead(reg, 4))
	}
	sel := g.rc(cQSelect, 2)
	for _, r := range []struct {
		off uint64
		n   int
	}{{cDFSelect, 4}, {cDF, 4}, {cGFSelect, 4}, {cGF, 4}, {cMSIX, 2}, {cNumQ, 2}, {cStatus, 1}, {cGeneration, 1}, {cQSelect, 2}} {
		fmt.Fprintf(&b, " %x", g.rc(r.off, r.n))
	}
	for q := range uint64(3) {
		g.wc(cQSelect, 2, q)
		for _, reg := range []uint64{cQSize, cQMSIX, cQEnable, cQNotifyOff} {
			fmt.Fprintf(&b, " %x", g.rc(reg, 2))
		}
		for _, reg := range []uint64{cQDesc, cQDriver, cQDevice} {
			fmt.Fprintf(&b, " %x", g.rc(reg, 8))
		}
	}
	g.wc(cQSelect, 2, sel)
	for off := uint64(0); off < 3*16; off += 4 {
		fmt.Fprintf(&b, " %x", g.barRead(g.msixTable()+off, 4))
	}
	fmt.Fprintf(&b, " pba %x", g.pba())
	return b.String()
}

func TestPCIHostileAccess(t *testing.T) {
	dev := newFakeDev()
	g := newGuest(t, dev, guestOpts{})
	g.negotiate(virtio.FeatureVersion1)
	g.setupQueue(0, 128, virtio.NoVector)
	before := g.snapshot()
	table, pba, notify := g.msixTable(), g.msixPBA(), uint64(g.caps[2].offset)
	bar := []struct {
		off uint64
		n   int
	}{
		{virtio.BARSize, 4}, {virtio.BARSize - 2, 4}, {virtio.BARSize - 1, 1 << 20}, {^uint64(0), 1}, {^uint64(0) - 3, 4},
		{^uint64(0) - 7, 8}, {g.common(cStatus), 2}, {g.common(cStatus), 4}, {g.common(cStatus), 8},
		{g.common(cStatus) + 1, 1}, {g.common(cDF), 2}, {g.common(cDF) + 1, 4}, {g.common(cQSize), 4},
		{g.common(cQSize), 1}, {g.common(cQDesc), 2}, {g.common(cQDesc) + 2, 2}, {g.common(cQSelect), 8},
		{g.common(0x38), 4}, {g.common(0x3c), 2}, {g.common(0x13), 3}, {0, 0}, {0, 3}, {0, 16},
		{uint64(g.caps[3].offset) + 1, 1}, {uint64(g.caps[3].offset), 2}, {uint64(g.caps[3].offset), 4},
		{notify + 1, 2}, {notify + 2, 2}, {notify + 8, 2}, {notify + 0x100, 4}, {notify, 1},
		{table, 1}, {table + 2, 2}, {table + 4, 8}, {table + 3*16, 4}, {table + 0xff0, 8},
		{pba + 8, 8}, {pba, 2}, {pba + 1, 1}, {uint64(g.caps[4].offset) + 0xffc, 8}, {uint64(g.caps[4].offset) + 3, 2},
	}
	for _, a := range bar {
		data := make([]byte, a.n)
		for i := range data {
			data[i] = 0xa5
		}
		g.bar.Read(a.off, data)
		if strings.Trim(string(data), "\x00") != "" {
			t.Errorf("BAR read of %d bytes at %#x = %x, want zeros", a.n, a.off, data)
		}
		for i := range data {
			data[i] = 0xff
		}
		g.bar.Write(a.off, data)
	}
	for _, a := range []struct {
		reg uint16
		n   int
	}{{0xff, 2}, {0xfe, 4}, {0x100, 1}, {0xffff, 4}, {0x3d, 4}, {0, 8}, {0, 3}, {0, 0}} {
		g.fn.WriteConfig(a.reg, make([]byte, a.n))
		g.fn.ReadConfig(a.reg, make([]byte, a.n))
	}
	if after := g.snapshot(); after != before {
		t.Errorf("hostile accesses changed state:\n%s\n%s", before, after)
	}
	if act, resets := dev.counts(); act != 0 || resets != 1 {
		t.Errorf("hostile accesses activated (%d) or reset (%d) the device", act, resets-1)
	}
	for _, k := range g.p.Notifications() {
		if err := k.Kick.Write(1); err != nil { // a kick would leave the counter non-zero
			t.Fatal(err)
		}
		if v, err := k.Kick.Read(); err != nil || v != 1 {
			t.Errorf("invalid notify writes kicked the queue: counter %d, %v", v-1, err)
		}
	}
}

// A fuzz op is one guest access or device event, opSize bytes: kind (bits
// 0–2: BAR read, BAR write, config read, config write, device event; bits
// 3–5 index opLens; bit 6 counts the offset down from the top of the address
// space), offset u16, value u64.
const opSize = 11

var opLens = [8]int{1, 2, 4, 8, 0, 3, 16, 6}

const (
	opBARRead = iota
	opBARWrite
	opCfgRead
	opCfgWrite
	opEvent
)

func encodeOp(kind, n int, off uint64, v uint64) []byte {
	b := make([]byte, opSize)
	for i, l := range opLens {
		if l == n {
			b[0] = byte(kind) | byte(i)<<3
			break
		}
	}
	binary.LittleEndian.PutUint16(b[1:], uint16(off))
	binary.LittleEndian.PutUint64(b[3:], v)
	return b
}

// recorder turns a guest's accesses into fuzz ops, to seed the corpus with
// what Linux does.
type recorder struct {
	fn  pci.Function
	bar devices.Device
	out []byte
}

func (r *recorder) ReadConfig(reg uint16, data []byte) {
	r.out = append(r.out, encodeOp(opCfgRead, len(data), uint64(reg), 0)...)
	r.fn.ReadConfig(reg, data)
}

func (r *recorder) WriteConfig(reg uint16, data []byte) {
	r.out = append(r.out, encodeOp(opCfgWrite, len(data), uint64(reg), getLE(data))...)
	r.fn.WriteConfig(reg, data)
}

func (r *recorder) Read(off uint64, data []byte) {
	r.out = append(r.out, encodeOp(opBARRead, len(data), off, 0)...)
	r.bar.Read(off, data)
}

func (r *recorder) Write(off uint64, data []byte) {
	r.out = append(r.out, encodeOp(opBARWrite, len(data), off, getLE(data))...)
	r.bar.Write(off, data)
}

func getLE(b []byte) uint64 {
	var v [8]byte
	copy(v[:], b)
	return binary.LittleEndian.Uint64(v[:])
}

// record runs script against a fresh guest of dev and returns its accesses.
func record(f *testing.F, dev *fakeDev, script func(g *guest)) []byte {
	g := newGuest(f, dev, guestOpts{})
	r := &recorder{fn: g.fn, bar: g.bar}
	g.fn, g.bar = r, r
	script(g)
	return r.out
}

func fuzzSeeds(f *testing.F) {
	f.Add(record(f, newFakeDev(), func(g *guest) {
		g.probe(virtio.FeatureVersion1 | virtio.FeatureRingEventIdx | virtio.FeatureRingIndirectDesc)
	}))
	f.Add(append(record(f, newFakeDev(), func(g *guest) {
		g.negotiate(virtio.FeatureVersion1)
		g.setupQueue(0, 256, 0)
		g.addStatus(virtio.StatusDriverOK)
	}), append(encodeOp(opEvent, 1, 0, 0), encodeOp(opBARRead, 1, 0x1000, 0)...)...))
	f.Add(append(record(f, newFakeDev(), func(g *guest) { g.probe(virtio.FeatureVersion1) }),
		append(encodeOp(opEvent, 1, 1, 0), encodeOp(opEvent, 1, 3, 0)...)...))
	f.Add(record(f, newFakeDev(), func(g *guest) {
		g.negotiate(virtio.FeatureVersion1)
		g.setupQueue(1, 64, 2)
		g.wc(cQDesc, 8, 0xffff_ffff_ffff_fff0)
		g.addStatus(virtio.StatusDriverOK)
		g.reset()
	}))
	f.Add(record(f, newFakeDev(), func(g *guest) {
		pos := g.caps[5].pos
		g.cfgWrite(pos+8, 4, uint32(g.common(cStatus)))
		g.cfgWrite(pos+12, 4, 1)
		g.cfgWrite(pos+16, 1, virtio.StatusAcknowledge)
		g.cfgRead(pos+16, 1)
	}))
	f.Add(append(encodeOp(opBARWrite, 8, 0x4000, ^uint64(0)), encodeOp(opBARRead, 8, 0x5000, 0)...))
}

// FuzzCommonConfig drives random register accesses through BAR 0 and the
// configuration space, and device events, against a transport with a fake
// device. Nothing may panic; the device must be started only after a valid
// negotiation and never twice without a reset.
func FuzzCommonConfig(f *testing.F) {
	fuzzSeeds(f)
	mem, err := memory.New(2 * memory.MiB)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	ram, err := mem.Slice(0, mem.Size())
	if err != nil {
		f.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, ops []byte) {
		clear(ram)
		dev := newFakeDev()
		msi := &fakeMSI{}
		p, err := virtio.NewPCI(dev, mem, virtio.PCIConfig{BARAddr: barAddr, MSI: msi, INTx: &fakeIRQ{}, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		fn, bar := p.Function(), p.BAR()
		for ; len(ops) >= opSize; ops = ops[opSize:] {
			runOp(t, dev, fn, bar, ops[:opSize])
			checkInvariants(t, dev, bar)
		}
	})
}

// runOp performs one op. The common configuration is at offset 0 of BAR 0
// (TestPCICapabilities finds it through its capability).
func runOp(t *testing.T, dev *fakeDev, fn pci.Function, bar devices.Device, op []byte) {
	n := opLens[op[0]>>3&7]
	off := uint64(binary.LittleEndian.Uint16(op[1:]))
	if op[0]&0x40 != 0 {
		off = ^off
	}
	data := make([]byte, n)
	copy(data, op[3:])
	switch op[0] & 7 {
	case opBARRead:
		bar.Read(off, data)
	case opBARWrite:
		bar.Write(off, data)
		if off == cStatus && n == 1 && data[0] == 0 {
			var s [1]byte
			bar.Read(off, s[:])
			if s[0] != 0 {
				t.Fatalf("device_status %#x after reset", s[0])
			}
		}
	case opCfgRead:
		fn.ReadConfig(uint16(off), data)
	case opCfgWrite:
		fn.WriteConfig(uint16(off), data)
	case opEvent:
		deviceEvent(dev, op[1])
	}
}

// deviceEvent plays an active device's worker: a used buffer and an
// interrupt, a broken queue, or a configuration change.
func deviceEvent(dev *fakeDev, b byte) {
	dev.mu.Lock()
	active := dev.active
	var a virtio.Activation
	if active {
		a = dev.activations[len(dev.activations)-1]
	}
	dev.mu.Unlock()
	if !active {
		return
	}
	q := a.Queues[int(b>>2)%len(a.Queues)]
	switch {
	case b&3 == 0:
		a.ConfigChanged()
	case q == nil:
	case b&3 == 1:
		if q.Push(uint16(b>>4), 0) == nil {
			q.Notify()
		}
	case b&3 == 2:
		q.Fail(errBoom)
	default:
		if _, _, err := q.Pop(); err == nil {
			q.Notify()
		}
	}
}

func checkInvariants(t *testing.T, dev *fakeDev, bar devices.Device) {
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if dev.doubleStart {
		t.Fatal("device activated twice without a reset")
	}
	if n := len(dev.activations); n > 0 {
		f := dev.activations[n-1].Features
		if f&^offered(dev) != 0 || f&virtio.FeatureVersion1 == 0 {
			t.Fatalf("device activated with features %#x", f)
		}
	}
	var v [2]byte
	bar.Read(cMSIX, v[:])
	if vec := binary.LittleEndian.Uint16(v[:]); vec != virtio.NoVector && int(vec) > len(dev.sizes) {
		t.Fatalf("config_msix_vector reads %#x, past the table", vec)
	}
}
