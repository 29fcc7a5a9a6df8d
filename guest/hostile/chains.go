package hostile

import (
	"fmt"
	"time"

	"github.com/govmm/govmm/guest/report"
)

// Where hostile descriptors point.
const (
	outsideRAM = 1 << 40 // far above any RAM a test guest has
	lapicBase  = 0xfee00000
	ioapicBase = 0xfec00000
	usedWait   = 300 * time.Millisecond
)

// target is one device's queue a case abuses: rng's requests, the spare
// disk's requests, the spare NIC's and the console's transmit queues. w
// is the descriptor flag the device expects on its buffers (rng writes;
// the NIC and console read).
type target struct {
	name string
	dev  func(e *env) *dev
	q    int
	w    uint16
}

var targets = []target{
	{"rng", func(e *env) *dev { return e.rng }, 0, fWrite},
	{"blk", func(e *env) *dev { return e.blk }, 0, 0},
	{"net", func(e *env) *dev { return e.net }, 1, 0},
	{"console", func(e *env) *dev { return e.con }, 1, 0},
}

// onQueue brings t's device up with one queue, lets build fill and
// publish descriptors, kicks, waits a little for the device to use them,
// reports the device status and used index, and resets the device. A
// device that then does not reset is an error.
func (e *env) onQueue(t target, build func(e *env, v *vq) error) ([]report.Field, error) {
	d := t.dev(e)
	v, err := e.startQueue(d, t.q)
	if err != nil {
		return nil, err
	}
	if err := build(e, v); err != nil {
		return nil, err
	}
	v.kick()
	v.waitUsed(v.availIdx, usedWait)
	fields := []report.Field{kv("status", fmt.Sprintf("%#x", d.status())), kv("avail", v.availIdx), kv("used", v.usedIdx())}
	return fields, d.reset()
}

// startQueue negotiates, sets up queue q at its maximum size (at most a
// page of descriptors) and sets DRIVER_OK.
func (e *env) startQueue(d *dev, q int) (*vq, error) {
	e.m.reset()
	if _, err := d.negotiate(featIndirect); err != nil {
		return nil, err
	}
	size := min(d.queueMax(q), 256)
	if size == 0 {
		return nil, fmt.Errorf("%s queue %d: size 0", d.name, q)
	}
	v, err := d.setupQueue(e.m, q, size)
	if err != nil {
		return nil, err
	}
	d.driverOK()
	return v, nil
}

// buffer returns a fresh page's address.
func buffer(m *dma) (uint64, error) {
	p, err := m.page()
	return p.phys, err
}

// chainCases are the descriptor shapes every target gets.
func chainCases() []kase {
	shapes := []struct {
		name  string
		build func(t target) func(e *env, v *vq) error
	}{
		{"loop", func(t target) func(e *env, v *vq) error {
			return func(e *env, v *vq) error {
				buf, err := buffer(e.m)
				v.setDesc(0, buf, 64, t.w|fNext, 1)
				v.setDesc(1, buf, 64, t.w|fNext, 0)
				v.push(0)
				return err
			}
		}},
		{"outside-ram", func(t target) func(e *env, v *vq) error {
			return func(e *env, v *vq) error {
				v.setDesc(0, outsideRAM, 4096, t.w, 0)
				v.push(0)
				return nil
			}
		}},
		{"mmio-hole", func(t target) func(e *env, v *vq) error {
			return func(e *env, v *vq) error {
				// Another device's registers, the I/O APIC and the local APIC.
				for i, a := range []uint64{e.healthBAR, ioapicBase, lapicBase} {
					v.setDesc(i, a, 256, t.w, 0)
					v.push(uint16(i))
				}
				return nil
			}
		}},
		{"huge-len", func(t target) func(e *env, v *vq) error {
			return func(e *env, v *vq) error {
				buf, err := buffer(e.m)
				if t.w&fWrite != 0 {
					// A device may fill a writable buffer before it sees where
					// the buffer ends: start this one past RAM, not in the
					// guest's own memory.
					buf = 0xf0000000
				}
				v.setDesc(0, buf, 0xffffffff, t.w, 0)
				v.setDesc(1, 0xfffffffffffff000, 0x2000, t.w, 0) // wraps past 2^64
				v.push(0)
				v.push(1)
				return err
			}
		}},
		{"avail-jump", func(t target) func(e *env, v *vq) error {
			return func(e *env, v *vq) error {
				buf, err := buffer(e.m)
				v.setDesc(0, buf, 64, t.w, 0)
				v.push(0)
				v.availIdx += 0x8000
				v.setAvailIdx(v.availIdx)
				return err
			}
		}},
	}
	var out []kase
	for _, s := range shapes {
		for _, t := range targets {
			build := s.build(t)
			out = append(out, kase{s.name + "-" + t.name, refused(func(e *env) ([]report.Field, error) { return e.onQueue(t, build) })})
		}
	}
	return out
}

// refused wraps a case whose chain the device must refuse: it sets
// DEVICE_NEEDS_RESET (virtio 1.2 §2.1.1) and uses nothing.
func refused(run func(e *env) ([]report.Field, error)) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		fields, err := run(e)
		if err != nil {
			return fields, err
		}
		var status uint8
		used := "0"
		for _, f := range fields {
			switch f.Key {
			case "status":
				fmt.Sscanf(f.Value, "%v", &status)
			case "used":
				used = f.Value
			}
		}
		if status&stNeedsReset == 0 || used != "0" {
			err = fmt.Errorf("the device took the chain: status %#x, used %s, want DEVICE_NEEDS_RESET and nothing used", status, used)
		}
		return fields, err
	}
}
