package govmm

import (
	"log/slog"

	"github.com/govmm/govmm/kvm"
)

// irqLine drives one input of the in-kernel PIC and IOAPIC.
type irqLine struct {
	vm  *kvm.VM
	irq uint32
}

func (l *irqLine) SetLevel(high bool) {
	if err := l.vm.IRQLine(l.irq, high); err != nil {
		// Only a closed VM fails here; the device cannot act on it.
		slog.Warn("irq line", "irq", l.irq, "err", err)
	}
}
