package virtio

// Common configuration structure, struct virtio_pci_common_cfg (virtio 1.2
// §4.1.4.3). queue_notify_data and queue_reset exist only with features this
// transport does not offer.
const (
	regDeviceFeatureSelect = 0x00 // u32
	regDeviceFeature       = 0x04 // u32, read-only
	regDriverFeatureSelect = 0x08 // u32
	regDriverFeature       = 0x0c // u32
	regConfigMSIXVector    = 0x10 // u16
	regNumQueues           = 0x12 // u16, read-only
	regDeviceStatus        = 0x14 // u8
	regConfigGeneration    = 0x15 // u8, read-only
	regQueueSelect         = 0x16 // u16
	regQueueSize           = 0x18 // u16
	regQueueMSIXVector     = 0x1a // u16
	regQueueEnable         = 0x1c // u16
	regQueueNotifyOff      = 0x1e // u16, read-only
	regQueueDesc           = 0x20 // u64
	regQueueDriver         = 0x28 // u64
	regQueueDevice         = 0x30 // u64

	// NoVector is VIRTIO_MSI_NO_VECTOR: no MSI-X vector (virtio 1.2 §4.1.5.1.2).
	NoVector = 0xffff
)

// commonState is what the driver programmed through the common
// configuration. PCI.mu guards it.
type commonState struct {
	deviceFeatureSelect uint32
	driverFeatureSelect uint32
	driverFeatures      uint64
	configVector        uint16
	status              uint8
	generation          uint8
	queueSelect         uint16
	queues              []queueState
}

// queueState is one virtqueue's registers (virtio 1.2 §4.1.4.3).
type queueState struct {
	size, vector         uint16
	enabled              bool
	desc, driver, device uint64 // descriptor table, available ring, used ring
}

// putLE stores the low len(data) bytes of v, little-endian.
func putLE(data []byte, v uint64) {
	for i := range data {
		data[i] = byte(v >> (8 * i))
	}
}

func getLE(data []byte) uint64 {
	var v uint64
	for i, b := range data {
		v |= uint64(b) << (8 * i)
	}
	return v
}

// featureWord is 32 bits of a feature set chosen by a select register.
func featureWord(f uint64, sel uint32) uint64 {
	if sel > 1 {
		return 0
	}
	return f >> (32 * sel) & 0xffffffff
}

// readCommon serves a read of n bytes at offset o of the common
// configuration. A register read with any width but its own reads as zero.
func (t *PCI) readCommon(o uint64, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, n := &t.common, len(data)
	var v uint64
	switch {
	case o == regDeviceFeatureSelect && n == 4:
		v = uint64(c.deviceFeatureSelect)
	case o == regDeviceFeature && n == 4:
		v = featureWord(t.offered, c.deviceFeatureSelect)
	case o == regDriverFeatureSelect && n == 4:
		v = uint64(c.driverFeatureSelect)
	case o == regDriverFeature && n == 4:
		v = featureWord(c.driverFeatures, c.driverFeatureSelect)
	case o == regConfigMSIXVector && n == 2:
		v = uint64(c.configVector)
	case o == regNumQueues && n == 2:
		v = uint64(len(c.queues))
	case o == regDeviceStatus && n == 1:
		v = uint64(c.status)
	case o == regConfigGeneration && n == 1:
		v = uint64(c.generation)
	case o == regQueueSelect && n == 2:
		v = uint64(c.queueSelect)
	default:
		v = t.readQueueLocked(o, n)
	}
	putLE(data, v)
}

// readQueueLocked reads a register of the selected queue; a queue_select
// past the last queue reads as a queue of size 0, which does not exist.
func (t *PCI) readQueueLocked(o uint64, n int) uint64 {
	c := &t.common
	if int(c.queueSelect) >= len(c.queues) {
		return 0
	}
	q := &c.queues[c.queueSelect]
	switch {
	case o == regQueueSize && n == 2:
		return uint64(q.size)
	case o == regQueueMSIXVector && n == 2:
		return uint64(q.vector)
	case o == regQueueEnable && n == 2 && q.enabled:
		return 1
	case o == regQueueNotifyOff && n == 2:
		return uint64(c.queueSelect) // notify register at queue index × multiplier
	}
	if p, shift, ok := q.addrField(o, n); ok {
		return *p >> shift
	}
	return 0
}

// addrField finds the 64-bit ring address at o, accessed whole (n 8) or as
// a 32-bit half, as Linux's vp_iowrite64_twopart does; shift selects the half.
func (q *queueState) addrField(o uint64, n int) (p *uint64, shift uint, ok bool) {
	if o < regQueueDesc || o >= regQueueDevice+8 || o%uint64(n) != 0 || n != 4 && n != 8 {
		return nil, 0, false
	}
	p = [...]*uint64{&q.desc, &q.driver, &q.device}[(o-regQueueDesc)/8]
	return p, uint(o%8) * 8, true
}

// writeCommon serves a driver write to the common configuration. Writes are
// serialized with each other, as a status write may reset or activate the
// device.
func (t *PCI) writeCommon(o uint64, data []byte) {
	t.lifeMu.Lock()
	defer t.lifeMu.Unlock()
	if t.closed {
		return
	}
	n, v := len(data), getLE(data)
	if o == regDeviceStatus && n == 1 {
		t.writeStatus(uint8(v))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := &t.common
	switch {
	case o == regDeviceFeatureSelect && n == 4:
		c.deviceFeatureSelect = uint32(v)
	case o == regDriverFeatureSelect && n == 4:
		c.driverFeatureSelect = uint32(v)
	case o == regDriverFeature && n == 4:
		t.writeDriverFeaturesLocked(uint32(v))
	case o == regConfigMSIXVector && n == 2:
		c.configVector = t.vectorOrNone(uint16(v))
	case o == regQueueSelect && n == 2:
		c.queueSelect = uint16(v)
	default:
		t.writeQueueLocked(o, n, v)
	}
}

// writeDriverFeaturesLocked stores 32 bits of the driver's features. They
// are frozen once FEATURES_OK is set (virtio 1.2 §2.2.2).
func (t *PCI) writeDriverFeaturesLocked(w uint32) {
	c := &t.common
	if c.status&StatusFeaturesOK != 0 || c.driverFeatureSelect > 1 {
		return
	}
	shift := 32 * c.driverFeatureSelect
	c.driverFeatures = c.driverFeatures&^(0xffffffff<<shift) | uint64(w)<<shift
}

// vectorOrNone keeps an MSI-X vector the table has, and answers NO_VECTOR
// for any other, which tells the driver the vector could not be assigned
// (virtio 1.2 §4.1.5.1.2).
func (t *PCI) vectorOrNone(v uint16) uint16 {
	if int(v) < len(t.msix.entries) {
		return v
	}
	return NoVector
}

// writeQueueLocked writes a register of the selected queue. The queue
// registers are frozen once the driver set DRIVER_OK; writes for a queue
// that does not exist are dropped.
func (t *PCI) writeQueueLocked(o uint64, n int, v uint64) {
	c := &t.common
	if c.status&StatusDriverOK != 0 || int(c.queueSelect) >= len(c.queues) {
		return
	}
	q := &c.queues[c.queueSelect]
	switch {
	case o == regQueueSize && n == 2:
		// A split ring's size is a power of two no larger than the
		// maximum (virtio 1.2 §2.7); other sizes are dropped.
		if s := uint16(v); s != 0 && s&(s-1) == 0 && s <= t.maxSize[c.queueSelect] {
			q.size = s
		}
	case o == regQueueMSIXVector && n == 2:
		q.vector = t.vectorOrNone(uint16(v))
	case o == regQueueEnable && n == 2:
		// Only 1 is defined: disabling takes VIRTIO_F_RING_RESET.
		q.enabled = q.enabled || v == 1
	default:
		if p, shift, ok := q.addrField(o, n); ok {
			mask := uint64(1)<<(8*n) - 1
			if n == 8 {
				mask = ^uint64(0)
			}
			*p = *p&^(mask<<shift) | v<<shift
		}
	}
}
