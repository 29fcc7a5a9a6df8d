package machine

import (
	"errors"
	"fmt"
	"io"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/blk"
	"github.com/govmm/govmm/devices/virtio/console"
	"github.com/govmm/govmm/devices/virtio/net"
	"github.com/govmm/govmm/devices/virtio/rng"
)

// closableDevice is a virtio device type with a backend (file, tap,
// goroutine) to release after its transport has reset it.
type closableDevice interface {
	virtio.Device
	io.Closer
}

// wireVirtio puts the virtio devices on PCI in a fixed order, so the guest
// names them the same way every boot: the rng, the console if asked, the
// ports (the next hvcN), the disks (vda, vdb, ...), then the NICs (eth0,
// eth1, ...).
func (m *Machine) wireVirtio() error {
	if err := m.addVirtio("rng", rng.New(), nil); err != nil {
		return fmt.Errorf("virtio-rng: %w", err)
	}
	if m.cfg.VirtioConsole {
		in := newInputQueue()
		m.consoleIn = in
		c := console.New(in, m.conOut)
		if err := m.addVirtio("console", c, closers(c, in)); err != nil {
			return fmt.Errorf("virtio-console: %w", err)
		}
	}
	for i, p := range m.cfg.Ports {
		c := console.New(p.In, p.Out)
		if err := m.addVirtio(fmt.Sprintf("port%d", i), c, c); err != nil {
			return fmt.Errorf("port[%d]: %w", i, err)
		}
	}
	for i, d := range m.cfg.Disks {
		dev, err := blk.Open(d)
		if err != nil {
			return fmt.Errorf("disk[%d]: %w", i, err)
		}
		if err := m.addVirtio(fmt.Sprintf("disk%d", i), dev, dev); err != nil {
			return fmt.Errorf("disk[%d] %q: %w", i, d.Path, err)
		}
	}
	for i, n := range m.cfg.NICs {
		dev, err := net.Open(n)
		if err != nil {
			return fmt.Errorf("net[%d]: %w", i, err)
		}
		if err := m.addVirtio(fmt.Sprintf("net%d", i), dev, dev); err != nil {
			return fmt.Errorf("net[%d] tap %s: %w", i, n.Tap, err)
		}
	}
	return nil
}

// addVirtio adds dev behind a virtio-pci transport; backend, if any, is
// closed after the transport has reset the device at teardown. name is the
// device's in QueueStats.
func (m *Machine) addVirtio(name string, dev virtio.Device, backend io.Closer) error {
	if backend != nil {
		// closers run last-added first: the transport's reset before this.
		m.closers = append(m.closers, backend)
	}
	t, err := m.addVirtioDevice(dev)
	if err != nil {
		return err
	}
	m.virtio = append(m.virtio, namedTransport{name, t})
	return nil
}

type namedTransport struct {
	name string
	t    *virtio.PCI
}

// QueueStats returns what each virtqueue served so far, keyed by device and
// queue index ("net0.q1" is the first NIC's transmit queue, "disk0.q0" the
// first disk's). Safe to call at any time, also after Close.
func (m *Machine) QueueStats() map[string]virtio.QueueStats {
	out := map[string]virtio.QueueStats{}
	for _, d := range m.virtio {
		for i, s := range d.t.QueueStats() {
			out[fmt.Sprintf("%s.q%d", d.name, i)] = s
		}
	}
	return out
}

// closers closes each in order.
func closers(cs ...io.Closer) io.Closer {
	return closerFunc(func() error {
		var errs []error
		for _, c := range cs {
			errs = append(errs, c.Close())
		}
		return errors.Join(errs...)
	})
}

var _ closableDevice = (*blk.Device)(nil)
var _ closableDevice = (*net.Device)(nil)
var _ closableDevice = (*console.Device)(nil)
