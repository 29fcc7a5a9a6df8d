package kvm

import "fmt"

// IRQChip names an in-kernel interrupt controller in a GSI route
// (KVM_IRQCHIP_* in asm/kvm.h).
type IRQChip uint32

const (
	IRQChipPICMaster IRQChip = 0
	IRQChipPICSlave  IRQChip = 1
	IRQChipIOAPIC    IRQChip = 2
)

// Pins per in-kernel controller: KVM rejects a route to a pin past these.
const (
	picPins    = 8
	ioapicPins = 24
)

// Route types of struct kvm_irq_routing_entry (KVM_IRQ_ROUTING_* in linux/kvm.h).
const (
	routingIRQChip = 1
	routingMSI     = 2
)

// MaxGSIRoutes is KVM_MAX_IRQ_ROUTES on x86: the most entries one
// KVM_SET_GSI_ROUTING takes, and one past the highest GSI.
const MaxGSIRoutes = 4096

// RoutingEntry is one route of the GSI routing table: IRQChipRoute or MSIRoute.
type RoutingEntry interface {
	encode() (irqRoutingEntry, error)
}

// IRQChipRoute sends GSI to a pin of the in-kernel PIC or I/O APIC.
type IRQChipRoute struct {
	GSI  uint32
	Chip IRQChip
	Pin  uint32
}

func (r IRQChipRoute) encode() (irqRoutingEntry, error) {
	pins := uint32(picPins)
	switch r.Chip {
	case IRQChipPICMaster, IRQChipPICSlave:
	case IRQChipIOAPIC:
		pins = ioapicPins
	default:
		return irqRoutingEntry{}, fmt.Errorf("GSI %d: unknown irqchip %d", r.GSI, r.Chip)
	}
	if r.Pin >= pins {
		return irqRoutingEntry{}, fmt.Errorf("GSI %d: irqchip %d has no pin %d", r.GSI, r.Chip, r.Pin)
	}
	e := irqRoutingEntry{GSI: r.GSI, Type: routingIRQChip}
	e.U[0], e.U[1] = uint32(r.Chip), r.Pin
	return e, nil
}

// MSIRoute makes GSI deliver the message-signalled interrupt that writes
// Data to Addr (struct kvm_irq_routing_msi).
type MSIRoute struct {
	GSI  uint32
	Addr uint64
	Data uint32
}

func (r MSIRoute) encode() (irqRoutingEntry, error) {
	e := irqRoutingEntry{GSI: r.GSI, Type: routingMSI}
	e.U[0], e.U[1], e.U[2] = uint32(r.Addr), uint32(r.Addr>>32), r.Data
	return e, nil
}

// DefaultRoutes is the table KVM_CREATE_IRQCHIP installs
// (kvm_setup_default_irq_routing, arch/x86/kvm/irq_comm.c): GSI 0–23 to
// I/O APIC pin i, and GSI 0–15 also to PIC pin i%8 of the master or slave.
// KVM_SET_GSI_ROUTING replaces the whole table, so a caller adding routes
// sends these too, or KVM_IRQ_LINE stops reaching the controllers.
func DefaultRoutes() []RoutingEntry {
	out := make([]RoutingEntry, 0, ioapicPins+2*picPins)
	for gsi := uint32(0); gsi < ioapicPins; gsi++ {
		out = append(out, IRQChipRoute{GSI: gsi, Chip: IRQChipIOAPIC, Pin: gsi})
		if gsi < 2*picPins {
			out = append(out, IRQChipRoute{GSI: gsi, Chip: IRQChipPICMaster + IRQChip(gsi/picPins), Pin: gsi % picPins})
		}
	}
	return out
}

// SetGSIRouting replaces the VM's whole GSI routing table with entries
// (KVM_SET_GSI_ROUTING). A GSI may appear more than once, e.g. on both the
// PIC and the I/O APIC. It needs the in-kernel irqchip.
func (vm *VM) SetGSIRouting(entries []RoutingEntry) error {
	if len(entries) > MaxGSIRoutes {
		return fmt.Errorf("KVM_SET_GSI_ROUTING: %d routes, at most %d", len(entries), MaxGSIRoutes)
	}
	raw := make([]irqRoutingEntry, len(entries))
	for i, r := range entries {
		e, err := r.encode()
		if err != nil {
			return fmt.Errorf("KVM_SET_GSI_ROUTING: %w", err)
		}
		if e.GSI >= MaxGSIRoutes {
			return fmt.Errorf("KVM_SET_GSI_ROUTING: GSI %d, at most %d", e.GSI, MaxGSIRoutes-1)
		}
		raw[i] = e
	}
	buf := newIRQRouting(raw)
	if _, err := ioctlPtr(vm.fd(), kvmSetGSIRouting, &buf[0]); err != nil {
		return fmt.Errorf("KVM_SET_GSI_ROUTING (%d routes): %w", len(entries), err)
	}
	return nil
}
