package kvmirq

import (
	"log/slog"
	"sync"

	"github.com/govmm/govmm/devices"
)

// SharedLines are the level-triggered GSIs that PCI functions' INTx pins
// share. KVM_IRQ_LINE holds a single level per GSI, so the OR of the pins on
// one GSI happens here.
type SharedLines struct {
	vm    IRQSetter
	lines map[uint32]*sharedIRQ
}

// NewSharedLines returns no lines yet; Pin creates them as wiring asks.
func NewSharedLines(vm IRQSetter) *SharedLines {
	return &SharedLines{vm: vm, lines: map[uint32]*sharedIRQ{}}
}

// Pin returns the INTx pin of PCI device dev (0-31) on gsi. Wiring calls it
// from one goroutine only.
func (s *SharedLines) Pin(gsi uint32, dev uint8) devices.IRQLine {
	l, ok := s.lines[gsi]
	if !ok {
		l = &sharedIRQ{vm: s.vm, gsi: gsi}
		s.lines[gsi] = l
	}
	return intxPin{line: l, bit: 1 << (dev % 32)}
}

// sharedIRQ is one GSI: high while any device on it asserts its pin.
type sharedIRQ struct {
	vm  IRQSetter
	gsi uint32

	mu       sync.Mutex
	asserted uint32 // bit n: device n asserts its pin
}

// intxPin is one PCI device's INTx pin on a shared GSI.
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
