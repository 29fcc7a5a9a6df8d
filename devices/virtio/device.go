// Package virtio owns the virtio 1.x device model (virtio 1.2 spec): split
// virtqueues and their bounded descriptor-chain walker, feature bits, the
// device status machine and the modern virtio-over-PCI transport. A device
// type (devices/virtio/blk, net, console, rng) implements Device and sees only
// validated chains; it never decodes a PCI register.
package virtio

import "github.com/govmm/govmm/memory"

// DeviceType is a virtio device ID (virtio 1.2 §5).
type DeviceType uint16

const (
	TypeNet     DeviceType = 1
	TypeBlock   DeviceType = 2
	TypeConsole DeviceType = 3
	TypeRNG     DeviceType = 4
)

// Feature bits that belong to the ring and the transport (virtio 1.2 §6). The
// transport offers these itself; a Device offers only its own bits (0–23).
const (
	FeatureRingIndirectDesc = 1 << 28
	FeatureRingEventIdx     = 1 << 29
	FeatureVersion1         = 1 << 32
)

// Device is one virtio device type behind a transport.
type Device interface {
	// Type is the virtio device ID.
	Type() DeviceType
	// Features are the device-type feature bits offered to the driver.
	Features() uint64
	// QueueMaxSizes lists each virtqueue's maximum size, a power of two.
	QueueMaxSizes() []uint16
	// ReadConfig and WriteConfig access the device-specific configuration
	// space (§4.1.4.6). The device checks offset+len(data) itself; bytes
	// past its configuration read as zero and writes there are dropped.
	ReadConfig(offset uint64, data []byte)
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device once the driver sets DRIVER_OK. Queues
	// holds one entry per QueueMaxSizes entry, nil for a queue the driver
	// did not enable. An error marks the device as needing reset.
	Activate(a Activation) error
	// Reset stops everything Activate started and returns only when no
	// goroutine of the device touches guest memory or its queues any more.
	// It is called on a driver reset and when the VM is torn down, and must
	// be safe to call on a device that was never activated.
	Reset()
}

// Activation is what a device gets when the driver finishes setting it up.
type Activation struct {
	Mem      *memory.RAM
	Features uint64   // negotiated: the driver's subset of what was offered
	Queues   []*Queue // index = virtqueue number; nil if not enabled
	// ConfigChanged tells the driver the device configuration changed
	// (a configuration change interrupt, §2.1.2), e.g. a net link change.
	ConfigChanged func()
}
