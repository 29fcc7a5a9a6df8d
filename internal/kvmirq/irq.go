// Package kvmirq implements the interrupt interfaces of package devices with
// KVM's in-kernel interrupt controllers: ISA lines (KVM_IRQ_LINE), PCI INTx
// lines shared by several functions, and MSI-X vectors routed to GSIs and
// raised through irqfds. The composition root chooses every IRQ and GSI and
// hands it in; this package only drives them.
package kvmirq

import (
	"log/slog"

	"github.com/govmm/govmm/devices"
)

// IRQSetter drives one in-kernel interrupt input; *kvm.VM implements it.
type IRQSetter interface {
	IRQLine(irq uint32, level bool) error
}

// ISALine returns input irq of the in-kernel PIC and I/O APIC as a
// devices.IRQLine.
func ISALine(vm IRQSetter, irq uint32) devices.IRQLine { return &isaLine{vm: vm, irq: irq} }

type isaLine struct {
	vm  IRQSetter
	irq uint32
}

func (l *isaLine) SetLevel(high bool) {
	if err := l.vm.IRQLine(l.irq, high); err != nil {
		// Only a closed VM fails here; the device cannot act on it.
		slog.Warn("irq line", "irq", l.irq, "err", err)
	}
}
