package virtio

import (
	"errors"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// Device status bits (virtio 1.2 §2.1).
const (
	StatusAcknowledge = 1
	StatusDriver      = 2
	StatusDriverOK    = 4
	StatusFeaturesOK  = 8
	StatusNeedsReset  = 0x40 // set by the device only
	StatusFailed      = 0x80

	statusDriverBits = StatusAcknowledge | StatusDriver | StatusDriverOK | StatusFeaturesOK | StatusFailed
)

// activation is what the device starts with, taken when DRIVER_OK is set.
type activation struct {
	features uint64
	queues   []*QueueConfig // nil where the driver did not enable the queue
}

// writeStatus serves a driver write of device_status; lifeMu is held.
// Writing 0 resets the device; otherwise the driver only adds bits (virtio
// 1.2 §2.1.2: it must not clear any), and the device may refuse
// FEATURES_OK.
func (t *PCI) writeStatus(v uint8) {
	if v == 0 {
		t.reset()
		return
	}
	t.mu.Lock()
	c := &t.common
	add := v & statusDriverBits &^ c.status
	if add&StatusFeaturesOK != 0 && !t.featuresAcceptableLocked() {
		add &^= StatusFeaturesOK // the driver reads it back and gives up (§3.1.1)
	}
	if add&StatusDriverOK != 0 && (c.status|add)&StatusFeaturesOK == 0 {
		add &^= StatusDriverOK
		t.brokenLocked(errors.New("driver set DRIVER_OK without FEATURES_OK"))
	}
	c.status |= add
	var a *activation
	if add&StatusDriverOK != 0 && c.status&StatusNeedsReset == 0 {
		a = t.activationLocked()
	}
	t.mu.Unlock()
	if a != nil {
		t.activate(a)
	}
}

// featuresAcceptableLocked says whether the driver's features can be
// accepted: a subset of those offered, with VERSION_1, since this is a
// modern-only device (virtio 1.2 §6.1).
func (t *PCI) featuresAcceptableLocked() bool {
	f := t.common.driverFeatures
	return f&^t.offered == 0 && f&FeatureVersion1 != 0
}

func (t *PCI) activationLocked() *activation {
	a := &activation{features: t.common.driverFeatures, queues: make([]*QueueConfig, len(t.common.queues))}
	for i, q := range t.common.queues {
		if q.enabled {
			a.queues[i] = &QueueConfig{
				Size: q.size, Desc: memory.GuestAddress(q.desc), Driver: memory.GuestAddress(q.driver), Device: memory.GuestAddress(q.device),
			}
		}
	}
	return a
}

// activate builds the enabled queues and starts the device; lifeMu is held.
// A queue the driver set up wrong, or a device that cannot start, leaves the
// device needing reset.
func (t *PCI) activate(a *activation) {
	queues := make([]*Queue, len(a.queues))
	for i, cfg := range a.queues {
		if cfg == nil {
			continue
		}
		q, err := NewQueue(t.mem, *cfg, a.features, t.kicks[i], queueNotifier{t, i})
		if err != nil { // the queues made so far have no goroutine yet: drop them
			t.broken(fmt.Errorf("set up queue %d: %w", i, err))
			return
		}
		q.CountInto(&t.counts[i])
		queues[i] = q
	}
	err := t.dev.Activate(Activation{Mem: t.mem, Features: a.features, Queues: queues, ConfigChanged: t.configChanged})
	if err != nil {
		t.broken(fmt.Errorf("activate: %w", err))
	}
}

// reset is a driver reset (virtio 1.2 §2.4): the device stops, then every
// register returns to its initial value, so device_status reads 0 only once
// the device no longer touches guest memory. lifeMu is held.
func (t *PCI) reset() {
	t.dev.Reset()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetLocked()
}

// resetLocked puts the common configuration, ISR and pending MSI-X bits in
// their initial state. The MSI-X table and config_generation are kept: they
// are not virtio device state.
func (t *PCI) resetLocked() {
	c := &t.common
	c.deviceFeatureSelect, c.driverFeatureSelect, c.driverFeatures = 0, 0, 0
	c.configVector, c.status, c.queueSelect = NoVector, 0, 0
	for i := range c.queues {
		c.queues[i] = queueState{size: t.maxSize[i], vector: NoVector}
	}
	t.isr = 0
	t.updateINTxLocked()
	clear(t.msix.pba)
	t.warned.reset()
}
