package kvm

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// Coalesced writes (the KVM API's KVM_REGISTER_COALESCED_MMIO and
// KVM_CAP_COALESCED_PIO; the ring's layout is recorded in docs/facts.md). A guest write into a registered zone does not
// come back from KVM_RUN: KVM appends it to a ring in one page of every
// vCPU's mmap, shared by the whole VM, and re-enters the guest. User space applies the
// writes, oldest first, before it serves the next exit. That suits a
// register whose write only latches a value for a later access that does
// exit, such as the PCI configuration address at port 0xCF8 (whose
// configuration-data access at 0xCFC follows it) or the CMOS index at 0x70:
// it halves the returns to user space of every such pair (the CPU still
// exits to KVM for each access). A write with an effect of its own
// (output, an interrupt, a reset) must never be coalesced, since it would
// wait for some later exit.
//
// The ring: struct kvm_coalesced_mmio_ring { u32 first, last; entries[] },
// each entry struct kvm_coalesced_mmio { u64 phys_addr; u32 len; u32 pio;
// u8 data[8] }. KVM fills the entry at last and then advances last; user
// space reads the entry at first and then advances first. With the ring
// full (last+1 == first), KVM exits for the write as usual, after the
// writes already in the ring.
const (
	ringFirst       = 0
	ringLast        = 4
	ringHeader      = 8
	ringEntrySize   = 24
	ringEntryLen    = 8
	ringEntryPIO    = 12
	ringEntryData   = 16
	ringEntryMaxLen = 8
)

// coalescedRing is a VM's ring: where it is in each vCPU's mmap, and the
// lock that lets one vCPU at a time apply writes from it.
type coalescedRing struct {
	page int // page offset in the vCPU mmap, set by the first registration
	on   atomic.Bool

	mu sync.Mutex
}

// maxCoalesced is KVM_COALESCED_MMIO_MAX: the entries a page holds.
func maxCoalesced(pageSize int) uint32 { return uint32((pageSize - ringHeader) / ringEntrySize) }

// coalescedZone mirrors struct kvm_coalesced_mmio_zone.
type coalescedZone struct {
	Addr uint64
	Size uint32
	PIO  uint32
}

// RegisterCoalescedPIO makes guest writes to ports [port, port+size) go to
// the coalesced ring instead of exiting; every vCPU's DrainCoalesced then
// hands them over. It fails where KVM lacks KVM_CAP_COALESCED_PIO.
func (vm *VM) RegisterCoalescedPIO(s *System, port uint64, size uint32) error {
	n, err := s.CheckExtension(CapCoalescedPIO)
	if err != nil {
		return err
	}
	if n <= 0 {
		return &CapabilityError{Cap: CapCoalescedPIO}
	}
	if !vm.ring.on.Load() {
		// KVM_CAP_COALESCED_MMIO answers with the ring's page in the vCPU
		// mmap. Set before on: vCPUs read page only once on is true.
		if vm.ring.page, err = s.CheckExtension(CapCoalescedMMIO); err != nil {
			return err
		}
	}
	if vm.ring.page <= 0 || (vm.ring.page+1)*os.Getpagesize() > vm.mmapSize {
		return fmt.Errorf("KVM's coalesced ring at page %d is outside the %d-byte vCPU mapping", vm.ring.page, vm.mmapSize)
	}
	z := coalescedZone{Addr: port, Size: size, PIO: 1}
	if _, err := ioctlPtr(vm.fd(), kvmRegisterCoalescedMMIO, &z); err != nil {
		return fmt.Errorf("KVM_REGISTER_COALESCED_MMIO ports [%#x, +%d): %w", port, size, err)
	}
	vm.ring.on.Store(true)
	return nil
}

// CoalescedWrite is one write KVM kept in the ring. Data points into the
// ring page: it is valid only during the call that receives it.
type CoalescedWrite struct {
	Addr uint64
	PIO  bool
	Data []byte
}

// DrainCoalesced hands serve each write waiting in the VM's coalesced ring,
// oldest first, and returns how many. Call it before serving an exit: the
// exit's access came after them. serve runs with the ring locked, so a
// vCPU that finds the ring empty knows the writes before it are applied.
// Without a registered zone it costs one atomic load.
func (c *VCPU) DrainCoalesced(serve func(CoalescedWrite)) (int, error) {
	if !c.ring.on.Load() {
		return 0, nil
	}
	ps := os.Getpagesize()
	page := c.run[c.ring.page*ps : (c.ring.page+1)*ps]
	return drainRing(page, &c.ring.mu, serve)
}

// drainRing applies the entries of one ring page under mu. The kernel
// writes last and the entries, so both are checked before use.
func drainRing(page []byte, mu *sync.Mutex, serve func(CoalescedWrite)) (int, error) {
	first, last := ringWord(page, ringFirst), ringWord(page, ringLast)
	if atomic.LoadUint32(first) == atomic.LoadUint32(last) {
		return 0, nil
	}
	mu.Lock()
	defer mu.Unlock()
	le := binary.LittleEndian
	limit := maxCoalesced(len(page))
	n := 0
	for {
		f, l := atomic.LoadUint32(first), atomic.LoadUint32(last)
		if f == l {
			return n, nil
		}
		if f >= limit || l >= limit {
			return n, fmt.Errorf("coalesced ring indexes %d..%d past its %d entries", f, l, limit)
		}
		e := page[ringHeader+int(f)*ringEntrySize:][:ringEntrySize]
		size := le.Uint32(e[ringEntryLen:])
		if size > ringEntryMaxLen {
			return n, fmt.Errorf("coalesced ring entry %d has length %d, more than %d", f, size, ringEntryMaxLen)
		}
		serve(CoalescedWrite{
			Addr: le.Uint64(e),
			PIO:  le.Uint32(e[ringEntryPIO:]) != 0,
			Data: e[ringEntryData : ringEntryData+size],
		})
		n++
		// Only now: a vCPU that sees the ring empty must find the write applied.
		atomic.StoreUint32(first, (f+1)%limit)
	}
}
