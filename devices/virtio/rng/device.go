// Package rng is the virtio entropy device (virtio 1.2 §5.4): it fills each
// buffer the driver offers with bytes from the host's getrandom, so the guest
// has entropy at boot.
package rng

import (
	"fmt"
	"sync"

	"github.com/govmm/govmm/devices/virtio"
)

// queueSize bounds the requests in flight; Linux's hw_random keeps one.
const queueSize = 64

// Device is one virtio-rng device. It has no configuration space and no
// feature bits.
type Device struct {
	mu    sync.Mutex // serialises Activate and Reset
	queue *virtio.Queue
	wg    sync.WaitGroup
}

var _ virtio.Device = (*Device)(nil)

// New returns an entropy device backed by crypto/rand.
func New() *Device { return &Device{} }

// Type implements virtio.Device.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeRNG }

// Features implements virtio.Device: the device has none of its own.
func (d *Device) Features() uint64 { return 0 }

// QueueMaxSizes implements virtio.Device: one request queue (§5.4.2).
func (d *Device) QueueMaxSizes() []uint16 { return []uint16{queueSize} }

// ReadConfig implements virtio.Device: there is no configuration (§5.4.4).
func (d *Device) ReadConfig(offset uint64, data []byte) { clear(data) }

// WriteConfig implements virtio.Device.
func (d *Device) WriteConfig(offset uint64, data []byte) {}

// Activate implements virtio.Device.
func (d *Device) Activate(a virtio.Activation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queue != nil {
		return fmt.Errorf("virtio-rng: activated twice without a reset")
	}
	if len(a.Queues) != 1 || a.Queues[0] == nil {
		return fmt.Errorf("virtio-rng: the driver did not enable the request queue")
	}
	d.queue = a.Queues[0]
	d.wg.Add(1)
	go d.worker(d.queue)
	return nil
}

// Reset implements virtio.Device.
func (d *Device) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queue != nil {
		d.queue.Stop()
	}
	d.wg.Wait()
	d.queue = nil
}
