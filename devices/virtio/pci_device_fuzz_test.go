package virtio_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/console"
	"github.com/govmm/govmm/devices/virtio/rng"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// A device fuzz op of kind opEvent writes guest RAM instead: the value's 8
// bytes at 8*offset, modulo the RAM's size.
const (
	opRAM     = opEvent
	deviceRAM = 256 * memory.KiB
)

// realDevices are the devices FuzzPCIDevice puts behind the transport, by
// the input's first byte, with a fake of the same shape to record seeds on.
var realDevices = []struct {
	new  func() virtio.Device
	fake func() *fakeDev
}{
	{func() virtio.Device { return rng.New() }, func() *fakeDev {
		return &fakeDev{typ: virtio.TypeRNG, sizes: []uint16{64}}
	}},
	{func() virtio.Device { return console.New(nil, io.Discard) }, func() *fakeDev {
		return &fakeDev{typ: virtio.TypeConsole, sizes: []uint16{128, 128}}
	}},
}

// ramOps writes p at guest address a as opRAM ops.
func ramOps(a uint64, p []byte) []byte {
	var out []byte
	for i := 0; i < len(p); i += 8 {
		var v [8]byte
		copy(v[:], p[i:])
		out = append(out, encodeOp(opRAM, 1, (a+uint64(i))/8, binary.LittleEndian.Uint64(v[:]))...)
	}
	return out
}

// FuzzPCIDevice drives the virtio-pci transport with a real device behind
// it, rng or console, in real guest RAM: fuzzed register reads and writes
// of every width over configuration space, common configuration, notify,
// ISR, device configuration and the MSI-X table and PBA, mixed with writes
// of guest RAM where the rings go. Nothing may panic or hang; the device
// raises only MSI-X vectors the table has; and between a reset (or before
// the first DRIVER_OK) and the next DRIVER_OK the device writes nothing in
// guest memory: its workers are stopped.
func FuzzPCIDevice(f *testing.F) {
	q0 := ringBase(0)
	ring := slices.Concat(
		ramOps(q0, virtiotest.RawDesc(0x3_0000, 64, virtiotest.DescFWrite, 0)), // descriptor 0: 64 writable bytes
		ramOps(q0+0x4000, []byte{0, 0, 1, 0, 0, 0, 0, 0}),                      // avail.idx 1, ring[0] = 0
		encodeOp(opBARWrite, 2, 0x3000, 0),                                     // kick queue 0
	)
	for i, d := range realDevices {
		up := record(f, d.fake(), func(g *guest) {
			g.probe(virtio.FeatureVersion1 | virtio.FeatureRingEventIdx)
		})
		f.Add(append([]byte{byte(i)}, slices.Concat(up, ring)...))
		f.Add(append([]byte{byte(i)}, slices.Concat(up, ring, record(f, d.fake(), func(g *guest) { g.reset() }), ring)...))
		f.Add(append([]byte{byte(i)}, slices.Concat(ring, up, encodeOp(opBARRead, 1, 0x1000, 0))...))
	}
	mem, err := memory.New(deviceRAM)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { mem.Close() })
	ram, err := mem.Slice(0, deviceRAM)
	if err != nil {
		f.Fatal(err)
	}
	frozen := make([]byte, deviceRAM)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 {
			return
		}
		d := realDevices[int(ops[0])%len(realDevices)]
		clear(ram)
		msi := &fakeMSI{}
		p, err := virtio.NewPCI(d.new(), mem, virtio.PCIConfig{BARAddr: barAddr, MSI: msi, INTx: &fakeIRQ{}, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		fn, bar := p.Function(), p.BAR()
		nvec := len(d.fake().sizes) + 1
		stopped := true // no worker runs: frozen is what guest RAM must hold
		copy(frozen, ram)
		for ops = ops[1:]; len(ops) >= opSize; ops = ops[opSize:] {
			op := ops[:opSize]
			switch kind := op[0] & 7; {
			case kind == opRAM:
				a := 8 * uint64(binary.LittleEndian.Uint16(op[1:])) % deviceRAM
				copy(ram[a:a+8], op[3:])
				copy(frozen[a:a+8], op[3:])
				continue
			case stopped && (kind == opBARWrite || kind == opCfgWrite):
				checkFrozen(t, frozen, ram) // before the write that may start the device
			}
			runOp(t, nil, fn, bar, op)
			var s [1]byte
			bar.Read(cStatus, s[:])
			switch {
			case stopped && s[0]&virtio.StatusDriverOK != 0:
				stopped = false
			case !stopped && s[0] == 0:
				copy(frozen, ram)
				stopped = true
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if stopped {
			checkFrozen(t, frozen, ram)
		}
		checkVectors(t, msi, nvec)
	})
}

func checkFrozen(t *testing.T, frozen, ram []byte) {
	t.Helper()
	if !bytes.Equal(frozen, ram) {
		i := 0
		for frozen[i] == ram[i] {
			i++
		}
		t.Fatalf("guest RAM at %#x changed while the device was reset or not yet started", i)
	}
}

// checkVectors checks that only vectors in the MSI-X table were routed or
// raised.
func checkVectors(t *testing.T, msi *fakeMSI, nvec int) {
	msi.mu.Lock()
	defer msi.mu.Unlock()
	for v := range msi.routes {
		if v < 0 || v >= nvec {
			t.Fatalf("routed vector %d of %d", v, nvec)
		}
	}
	for _, v := range msi.signals {
		if v < 0 || v >= nvec {
			t.Fatalf("raised vector %d of %d", v, nvec)
		}
	}
}
