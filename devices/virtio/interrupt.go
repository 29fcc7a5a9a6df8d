package virtio

import (
	"fmt"
	"sync/atomic"
)

// ISR status bits (virtio 1.2 §4.1.4.5), used while MSI-X is disabled.
const (
	isrQueue  = 1 << 0
	isrConfig = 1 << 1
)

// queueNotifier is the Notifier of queue q.
type queueNotifier struct {
	t *PCI
	q int
}

func (n queueNotifier) Interrupt() {
	n.t.mu.Lock()
	defer n.t.mu.Unlock()
	n.t.raiseLocked(n.t.common.queues[n.q].vector, isrQueue)
}

func (n queueNotifier) Broken(err error) {
	n.t.broken(fmt.Errorf("queue %d: %w", n.q, err))
}

// configChanged is Activation.ConfigChanged: a configuration change
// notification, with a new config_generation so the driver rereads.
func (t *PCI) configChanged() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.common.generation++
	t.raiseLocked(t.common.configVector, isrConfig)
}

// broken marks the device as needing reset (virtio 1.2 §2.1.2) and tells
// the driver with a configuration change notification. Only the first
// failure until the next reset is notified, and logged at most once a
// second across resets.
func (t *PCI) broken(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.brokenLocked(err)
}

func (t *PCI) brokenLocked(err error) {
	if t.common.status&StatusNeedsReset != 0 {
		return
	}
	t.common.status |= StatusNeedsReset
	t.broke.Warn("virtio device needs reset", "err", err)
	t.raiseLocked(t.common.configVector, isrConfig)
}

// raiseLocked sends an interrupt: to MSI-X vector v if MSI-X is enabled,
// otherwise by setting isrBit and asserting INTx.
func (t *PCI) raiseLocked(v uint16, isrBit uint8) {
	if t.msix.enabled {
		t.signalLocked(v)
		return
	}
	t.isr |= isrBit
	t.updateINTxLocked()
}

// readISR returns the ISR status and clears it, deasserting INTx (virtio
// 1.2 §4.1.4.5).
func (t *PCI) readISR() uint8 {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := t.isr
	t.isr = 0
	t.updateINTxLocked()
	return v
}

// intxPending is the Interrupt Status bit (PCI 3.0 §6.2.3): the function
// has an INTx interrupt pending, whether or not Interrupt Disable holds the
// pin low.
func (t *PCI) intxPending() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.intx != nil && t.isr != 0 && !t.msix.enabled
}

func (t *PCI) setINTxDisabled(off bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.noINTx = off
	t.updateINTxLocked()
}

// updateINTxLocked drives the INTx line: high while an ISR bit is set,
// unless MSI-X is enabled (PCI 3.0 §6.8.3.2) or the Command register
// disables INTx.
func (t *PCI) updateINTxLocked() {
	if t.intx == nil {
		return
	}
	high := t.isr != 0 && !t.msix.enabled && !t.noINTx
	if high != t.intxOn {
		t.intxOn = high
		t.intx.SetLevel(high)
	}
}

// warnings rate-limits log lines about host-side failures to one of each
// kind until the next driver reset.
type warnings struct {
	kick, route, signal atomic.Bool
}

func (w *warnings) reset() {
	w.kick.Store(false)
	w.route.Store(false)
	w.signal.Store(false)
}

func (t *PCI) warnOnce(flag *atomic.Bool, msg string, args ...any) {
	if flag.CompareAndSwap(false, true) {
		t.log.Warn(msg, append([]any{"device", t.name}, args...)...)
	}
}
