package govmm

import (
	"log/slog"
	"sync"
)

// irqSetter drives one in-kernel interrupt input; *kvm.VM implements it.
type irqSetter interface {
	IRQLine(irq uint32, level bool) error
}

// sharedIRQ is one level-triggered GSI that several PCI functions' INTx pins
// share: it is high while any of them asserts it. KVM_IRQ_LINE holds a single
// level per GSI, so the OR happens here.
type sharedIRQ struct {
	vm  irqSetter
	gsi uint32

	mu       sync.Mutex
	asserted uint32 // bit n: device n asserts its pin
}

// intxPin is one PCI device's INTx pin on a shared GSI: a devices.IRQLine.
type intxPin struct {
	line *sharedIRQ
	bit  uint32
}

func (p intxPin) SetLevel(high bool) {
	l := p.line
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.asserted != 0
	if high {
		l.asserted |= p.bit
	} else {
		l.asserted &^= p.bit
	}
	if now := l.asserted != 0; now != was {
		if err := l.vm.IRQLine(l.gsi, now); err != nil {
			// Only a closed VM fails here; the device cannot act on it.
			slog.Warn("PCI INTx line", "gsi", l.gsi, "err", err)
		}
	}
}

// pciINTxGSI is the GSI that INTx pin (0 = INTA#) of PCI device dev is wired
// to, as the DSDT's _PRT tells the guest: the usual swizzle, so functions
// that use INTA# spread over all eight lines.
func pciINTxGSI(dev, pin uint8) uint32 {
	return pciINTxGSIBase + (uint32(dev)+uint32(pin))%pciINTxGSIs
}

// intxLine returns the line for INTx pin (0 = INTA#) of PCI device dev and
// its GSI, which the function shows in its Interrupt Line register. Wiring
// calls it from New only.
func (v *VM) intxLine(dev, pin uint8) (intxPin, uint32) {
	gsi := pciINTxGSI(dev, pin)
	l, ok := v.intx[gsi]
	if !ok {
		l = &sharedIRQ{vm: v.kvm, gsi: gsi}
		v.intx[gsi] = l
	}
	return intxPin{line: l, bit: 1 << (dev % 32)}, gsi
}
