package kvm

import "unsafe"

// struct kvm_irq_routing is { __u32 nr; __u32 flags; struct
// kvm_irq_routing_entry entries[]; }: two words, then nr entries of twelve
// words. Every field is a __u32, so a []uint32 has the right alignment.
const (
	irqRoutingHeaderWords = 2
	irqRoutingEntryWords  = int(unsafe.Sizeof(irqRoutingEntry{})) / 4
)

// newIRQRouting builds a struct kvm_irq_routing holding entries.
func newIRQRouting(entries []irqRoutingEntry) []uint32 {
	buf := make([]uint32, irqRoutingHeaderWords+len(entries)*irqRoutingEntryWords)
	buf[0] = uint32(len(entries))
	if len(entries) > 0 {
		copy(unsafe.Slice((*irqRoutingEntry)(unsafe.Pointer(&buf[irqRoutingHeaderWords])), len(entries)), entries)
	}
	return buf
}
