package kvmirq

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/kvm"
)

// GSITable is what MSIRouter needs of KVM: the whole-table routing ioctl and
// irqfd. *kvm.VM implements it; tests fake it.
type GSITable interface {
	SetGSIRouting([]kvm.RoutingEntry) error
	IRQFD(eventFD int, gsi uint32) error
}

// MSIRouter owns the VM's GSI routing table: KVM's default routes to the PIC
// and I/O APIC, plus one MSI route per vector a PCI function has pointed
// somewhere. It hands out GSIs from the first one it is given up, each with an eventfd KVM
// turns into that GSI's interrupt (irqfd), so a device raises an MSI with
// one write and no VM exit.
type MSIRouter struct {
	kvm   GSITable
	first uint32 // the first GSI for MSI vectors

	mu     sync.Mutex
	next   uint32                  // next free GSI
	routes map[uint32]kvm.MSIRoute // routed vectors, by GSI
	fds    []*eventfd.EventFD      // every vector's irqfd, closed with the VM
}

// NewMSIRouter returns a router that allocates GSIs from first up: the GSIs
// below it are the interrupt controllers' inputs.
func NewMSIRouter(vm GSITable, first uint32) *MSIRouter {
	return &MSIRouter{kvm: vm, first: first, next: first, routes: map[uint32]kvm.MSIRoute{}}
}

// NextGSI is the GSI the next vector will get.
func (r *MSIRouter) NextGSI() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next
}

// Vectors allocates n vectors for one PCI function.
func (r *MSIRouter) Vectors(n int) (*MSIVectors, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 1 || uint64(r.next)+uint64(n) > kvm.MaxGSIRoutes {
		return nil, fmt.Errorf("allocate %d MSI vectors from GSI %d: KVM has %d GSIs", n, r.next, kvm.MaxGSIRoutes)
	}
	m := &MSIVectors{r: r, gsis: make([]uint32, n), fds: make([]*eventfd.EventFD, n), routed: make([]atomic.Bool, n)}
	for i := range n {
		fd, err := eventfd.New()
		if err != nil {
			return nil, fmt.Errorf("MSI vector %d: %w", i, err)
		}
		r.fds = append(r.fds, fd) // closed by Close even if IRQFD fails
		gsi := r.next
		if err := r.kvm.IRQFD(fd.FD(), gsi); err != nil {
			return nil, fmt.Errorf("MSI vector %d: %w", i, err)
		}
		r.next++
		m.gsis[i], m.fds[i] = gsi, fd
	}
	return m, nil
}

// route points gsi at message m and sends KVM the whole table, which
// KVM_SET_GSI_ROUTING replaces at once.
func (r *MSIRouter) route(gsi uint32, m devices.MSIMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := kvm.MSIRoute{GSI: gsi, Addr: m.Addr, Data: m.Data}
	old, had := r.routes[gsi]
	if had && old == want {
		return nil // Linux rewrites unchanged messages, e.g. on every unmask
	}
	r.routes[gsi] = want
	if err := r.kvm.SetGSIRouting(r.table()); err != nil {
		if had {
			r.routes[gsi] = old
		} else {
			delete(r.routes, gsi)
		}
		return fmt.Errorf("route MSI on GSI %d to %#x/%#x: %w", gsi, m.Addr, m.Data, err)
	}
	return nil
}

// table is KVM's default routes followed by the MSI routes; r.mu is held.
func (r *MSIRouter) table() []kvm.RoutingEntry {
	t := kvm.DefaultRoutes()
	for gsi := r.first; gsi < r.next; gsi++ {
		if m, ok := r.routes[gsi]; ok {
			t = append(t, m)
		}
	}
	return t
}

// Close closes every vector's eventfd; KVM drops the irqfds with them.
func (r *MSIRouter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, fd := range r.fds {
		errs = append(errs, fd.Close())
	}
	r.fds = nil
	return errors.Join(errs...)
}

// MSIVectors is one PCI function's MSI-X vectors: devices.MSIVectors.
type MSIVectors struct {
	r      *MSIRouter
	gsis   []uint32
	fds    []*eventfd.EventFD
	routed []atomic.Bool
}

var _ devices.MSIVectors = (*MSIVectors)(nil)

func (m *MSIVectors) check(vector int) error {
	if vector < 0 || vector >= len(m.gsis) {
		return fmt.Errorf("MSI vector %d: the function has %d", vector, len(m.gsis))
	}
	return nil
}

// Route points vector at msg.
func (m *MSIVectors) Route(vector int, msg devices.MSIMessage) error {
	if err := m.check(vector); err != nil {
		return err
	}
	if err := m.r.route(m.gsis[vector], msg); err != nil {
		return err
	}
	m.routed[vector].Store(true)
	return nil
}

// Signal raises vector through its irqfd; a vector never routed is dropped,
// as KVM would drop an interrupt on a GSI with no route.
func (m *MSIVectors) Signal(vector int) error {
	if err := m.check(vector); err != nil {
		return err
	}
	if !m.routed[vector].Load() {
		return nil
	}
	if err := m.fds[vector].Write(1); err != nil {
		return fmt.Errorf("signal MSI vector %d (GSI %d): %w", vector, m.gsis[vector], err)
	}
	return nil
}
