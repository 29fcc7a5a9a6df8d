// Package net is the virtio network device (virtio 1.2 §5.1) backed by a tap
// interface: one receive and one transmit queue, checksum and segmentation
// offloads passed through to the tap, mergeable receive buffers, the MAC and
// link status in configuration space. A chain becomes a validated request
// (request.go) before the workers (worker.go) touch the tap.
package net

import (
	"crypto/rand"
	"errors"
	"fmt"
	stdnet "net"
	"sync"
	"time"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/net/tap"
)

// Device feature bits (virtio 1.2 §5.1.3).
const (
	featureCsum      = 1 << 0  // the driver may send partially checksummed frames
	featureGuestCsum = 1 << 1  // the device may deliver them
	featureMAC       = 1 << 5  // config.mac is valid
	featureGuestTSO4 = 1 << 7  // the device may deliver TCPv4 GSO frames
	featureGuestTSO6 = 1 << 8  // ... TCPv6
	featureGuestECN  = 1 << 9  // ... with ECN
	featureHostTSO4  = 1 << 11 // the driver may send TCPv4 GSO frames
	featureHostTSO6  = 1 << 12 // ... TCPv6
	featureMrgRxbuf  = 1 << 15 // a received packet may span several chains
	featureStatus    = 1 << 16 // config.status is valid
)

// Configuration space (§5.1.4, struct virtio_net_config): mac[6], then a le16
// status; the fields after it belong to features not offered and read as zero.
const (
	cfgMAC       = 0
	cfgStatus    = 6
	configSize   = 8
	statusLinkUp = 1 // VIRTIO_NET_S_LINK_UP
)

// Virtqueues (§5.1.2): no control queue and no multiqueue are offered.
const (
	rxQueue   = 0
	txQueue   = 1
	numQueues = 2
	queueSize = 256
)

// Options describe one NIC (the --net flag).
type Options struct {
	Tap string              // tap interface to attach to, created if missing
	MAC stdnet.HardwareAddr // the guest's MAC; random and locally administered if nil
}

// backend is the tap as the device uses it; tests substitute a fake.
type backend interface {
	Read(p []byte) (int, error)
	ReadNow(p []byte) (int, error) // tap.ErrNoFrame when none is queued
	Writev(iov [][]byte) (int, error)
	SetOffload(tap.Offload) error
	SetDeadline(time.Time) error
	Close() error
}

// Device is one virtio-net NIC. Open it, hand it to a transport, and Close it
// after the transport has reset it.
type Device struct {
	name   string // the tap's, for errors and logs
	tap    backend
	mac    stdnet.HardwareAddr
	config [configSize]byte
	log    *virtio.Warner

	mu     sync.Mutex // serialises Activate and Reset
	queues []*virtio.Queue
	wg     sync.WaitGroup
}

var _ virtio.Device = (*Device)(nil)

// Open checks the options and attaches to the tap. The tap is not brought up:
// that, and its addresses, are the host administrator's.
func Open(opts Options) (*Device, error) {
	mac, err := chooseMAC(opts.MAC)
	if err != nil {
		return nil, fmt.Errorf("net %q: %w", opts.Tap, err)
	}
	t, err := tap.Open(opts.Tap)
	if err != nil {
		return nil, err
	}
	return newDevice(t, opts.Tap, mac), nil
}

func newDevice(b backend, name string, mac stdnet.HardwareAddr) *Device {
	d := &Device{name: name, tap: b, mac: mac, log: virtio.NewWarner("tap", name)}
	copy(d.config[cfgMAC:], mac)
	d.config[cfgStatus] = statusLinkUp // le16; the link of a tap is always up to the guest
	return d
}

// chooseMAC checks a MAC from the user or draws a random one with the locally
// administered bit set and the multicast bit clear (IEEE 802 §8.2).
func chooseMAC(mac stdnet.HardwareAddr) (stdnet.HardwareAddr, error) {
	if mac == nil {
		m := make(stdnet.HardwareAddr, 6)
		rand.Read(m) // never fails (crypto/rand, Go ≥ 1.24)
		m[0] = m[0]&^1 | 2
		return m, nil
	}
	switch {
	case len(mac) != 6:
		return nil, fmt.Errorf("MAC %v is not 6 bytes long", mac)
	case mac[0]&1 != 0:
		return nil, fmt.Errorf("MAC %v is a multicast address: clear the low bit of the first byte", mac)
	case [6]byte(mac) == [6]byte{}:
		return nil, errors.New("MAC 00:00:00:00:00:00 is not a valid address")
	}
	return append(stdnet.HardwareAddr(nil), mac...), nil
}

// MAC is the guest's MAC address.
func (d *Device) MAC() stdnet.HardwareAddr { return append(stdnet.HardwareAddr(nil), d.mac...) }

// Close releases the tap; a tap that Open created disappears.
func (d *Device) Close() error {
	d.Reset()
	if err := d.tap.Close(); err != nil {
		return fmt.Errorf("close tap %q: %w", d.name, err)
	}
	return nil
}

// Type implements virtio.Device.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeNet }

// Features implements virtio.Device. Every offload is the tap's: the kernel
// checks and finishes the frames, so the device only passes headers through.
func (d *Device) Features() uint64 {
	return featureCsum | featureGuestCsum | featureMAC | featureGuestTSO4 | featureGuestTSO6 |
		featureGuestECN | featureHostTSO4 | featureHostTSO6 | featureMrgRxbuf | featureStatus
}

// QueueMaxSizes implements virtio.Device.
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{queueSize, queueSize} }

// ReadConfig implements virtio.Device: the configuration never changes, and
// bytes past it read as zero.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < configSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig implements virtio.Device. Nothing is writable: the MAC is only
// writable through the legacy interface (§5.1.4.2).
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// offload is what the tap may hand the driver under the negotiated features
// (§5.1.3.1: GUEST_TSO* and GUEST_ECN depend on GUEST_CSUM).
func offload(features uint64) tap.Offload {
	if features&featureGuestCsum == 0 {
		return 0
	}
	o := tap.OffloadCsum
	if features&featureGuestTSO4 != 0 {
		o |= tap.OffloadTSO4
	}
	if features&featureGuestTSO6 != 0 {
		o |= tap.OffloadTSO6
	}
	if features&featureGuestECN != 0 {
		o |= tap.OffloadTSOECN
	}
	return o
}

// Activate implements virtio.Device: it sets the tap's offloads and starts a
// worker for each enabled queue.
func (d *Device) Activate(a virtio.Activation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queues != nil {
		return fmt.Errorf("net %q: activated twice without a reset", d.name)
	}
	if len(a.Queues) != numQueues {
		return fmt.Errorf("net %q: %d queues, the device has %d", d.name, len(a.Queues), numQueues)
	}
	if err := d.tap.SetOffload(offload(a.Features)); err != nil {
		return fmt.Errorf("net %q: %w", d.name, err)
	}
	// Reset left a deadline in the past to stop the workers.
	if err := d.tap.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("net %q: clear the tap deadline: %w", d.name, err)
	}
	d.queues = a.Queues
	if q := a.Queues[rxQueue]; q != nil {
		r := newReceiver(q, d.tap, a.Features, d.log)
		d.wg.Add(1)
		go func() { defer d.wg.Done(); r.run() }()
	}
	if q := a.Queues[txQueue]; q != nil {
		t := newTransmitter(q, d.tap, a.Features, d.log)
		d.wg.Add(1)
		go func() { defer d.wg.Done(); t.run() }()
	}
	return nil
}

// Reset implements virtio.Device: stop both workers, even one blocked on the
// tap, and wait for them. A packet read but not yet delivered is dropped.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queues == nil {
		return
	}
	for _, q := range d.queues {
		if q != nil {
			q.Stop()
		}
	}
	if err := d.tap.SetDeadline(time.Unix(1, 0)); err != nil {
		d.log.Warn("cannot interrupt the tap; waiting for traffic to stop the workers", "err", err)
	}
	d.wg.Wait()
	d.queues = nil
}
