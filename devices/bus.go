package devices

import (
	"fmt"
	"sort"
	"sync"
)

// maxTrackedAddrs bounds the unhandled-access table: a guest scanning the
// address space must not grow govmm's memory.
const maxTrackedAddrs = 256

// otherAddr collects unhandled accesses past maxTrackedAddrs distinct ones.
const otherAddr = ^uint64(0)

type mapping struct {
	base, size uint64
	name       string
	dev        Device
}

func (m mapping) end() uint64 { return m.base + m.size } // Register rules out overflow

// Bus routes accesses in one address space (port I/O or MMIO) to the device
// registered at that address. It is safe for concurrent use.
type Bus struct {
	name string

	mu       sync.RWMutex
	mappings []mapping // sorted by base, never overlapping

	unhandledMu sync.Mutex
	unhandled   map[unhandledKey]uint64
}

type unhandledKey struct {
	addr  uint64
	write bool
}

// UnhandledAccess counts guest accesses to an address with no device.
// Addr is ^0 for the accesses past the tracking limit.
type UnhandledAccess struct {
	Addr  uint64 `json:"addr"`
	Write bool   `json:"write"`
	Count uint64 `json:"count"`
}

// NewBus returns an empty bus; name ("pio", "mmio") appears in errors.
func NewBus(name string) *Bus {
	return &Bus{name: name, unhandled: make(map[unhandledKey]uint64)}
}

// Register maps d at [base, base+size). It rejects an empty or overflowing
// range and one that overlaps a device already there.
func (b *Bus) Register(base, size uint64, name string, d Device) error {
	if size == 0 {
		return fmt.Errorf("%s bus: %s at %#x has size 0", b.name, name, base)
	}
	if base+size < base {
		return fmt.Errorf("%s bus: %s at %#x size %#x wraps around the address space", b.name, name, base, size)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := sort.Search(len(b.mappings), func(i int) bool { return b.mappings[i].base >= base })
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(b.mappings) {
			continue
		}
		if m := b.mappings[j]; base < m.end() && m.base < base+size {
			return fmt.Errorf("%s bus: %s [%#x, %#x) overlaps %s [%#x, %#x)", b.name, name, base, base+size, m.name, m.base, m.end())
		}
	}
	b.mappings = append(b.mappings, mapping{})
	copy(b.mappings[i+1:], b.mappings[i:])
	b.mappings[i] = mapping{base: base, size: size, name: name, dev: d}
	return nil
}

// Unregister removes the device registered at base, as when the guest moves a
// PCI BAR.
func (b *Bus) Unregister(base uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.mappings {
		if m.base == base {
			b.mappings = append(b.mappings[:i], b.mappings[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("%s bus: nothing registered at %#x", b.name, base)
}

// find returns the device whose range holds addr.
func (b *Bus) find(addr uint64) (mapping, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	i := sort.Search(len(b.mappings), func(i int) bool { return b.mappings[i].end() > addr })
	if i < len(b.mappings) && b.mappings[i].base <= addr {
		return b.mappings[i], true
	}
	return mapping{}, false
}

// Read serves a guest read at addr. With no device there, data reads as all
// ones (as an empty ISA bus does) and the access is counted.
func (b *Bus) Read(addr uint64, data []byte) bool {
	m, ok := b.find(addr)
	if !ok {
		for i := range data {
			data[i] = 0xff
		}
		b.count(addr, false)
		return false
	}
	m.dev.Read(addr-m.base, data)
	return true
}

// Write serves a guest write at addr; with no device there it is counted and dropped.
func (b *Bus) Write(addr uint64, data []byte) bool {
	m, ok := b.find(addr)
	if !ok {
		b.count(addr, true)
		return false
	}
	m.dev.Write(addr-m.base, data)
	return true
}

func (b *Bus) count(addr uint64, write bool) {
	b.unhandledMu.Lock()
	defer b.unhandledMu.Unlock()
	k := unhandledKey{addr, write}
	if _, seen := b.unhandled[k]; !seen && len(b.unhandled) >= maxTrackedAddrs {
		k.addr = otherAddr
	}
	b.unhandled[k]++
}

// Unhandled lists the counted accesses with no device, by address.
func (b *Bus) Unhandled() []UnhandledAccess {
	b.unhandledMu.Lock()
	defer b.unhandledMu.Unlock()
	out := make([]UnhandledAccess, 0, len(b.unhandled))
	for k, n := range b.unhandled {
		out = append(out, UnhandledAccess{Addr: k.addr, Write: k.write, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Addr != out[j].Addr {
			return out[i].Addr < out[j].Addr
		}
		return !out[i].Write && out[j].Write
	})
	return out
}
