package hostile

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const pageSize = 4096

// page is one locked page of this process's memory and the guest-physical
// address the device sees it at.
type page struct {
	b    []byte
	phys uint64
}

// dma hands out pages a device can read and write: locked, so that their
// physical addresses hold, and looked up in /proc/self/pagemap (root sees
// page frame numbers).
type dma struct {
	mem     []byte
	pagemap *os.File
	next    int
}

func newDMA(pages int) (*dma, error) {
	mem, err := unix.Mmap(-1, 0, pages*pageSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE|unix.MAP_LOCKED)
	if err != nil {
		return nil, fmt.Errorf("map %d DMA pages: %w", pages, err)
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		unix.Munmap(mem) //nolint:errcheck // already failing
		return nil, err
	}
	return &dma{mem: mem, pagemap: f}, nil
}

func (d *dma) close() {
	d.pagemap.Close()
	unix.Munmap(d.mem) //nolint:errcheck // the pages are only ours
}

// reset makes every page available again, zeroed.
func (d *dma) reset() {
	clear(d.mem)
	d.next = 0
}

// page returns the next unused page.
func (d *dma) page() (page, error) {
	if d.next*pageSize >= len(d.mem) {
		return page{}, fmt.Errorf("out of DMA pages (%d)", len(d.mem)/pageSize)
	}
	b := d.mem[d.next*pageSize : (d.next+1)*pageSize]
	d.next++
	var e [8]byte
	if _, err := d.pagemap.ReadAt(e[:], int64(virtAddr(b)/pageSize*8)); err != nil {
		return page{}, fmt.Errorf("pagemap: %w", err)
	}
	v := binary.LittleEndian.Uint64(e[:])
	pfn := v & (1<<55 - 1)
	if v&(1<<63) == 0 || pfn == 0 {
		return page{}, fmt.Errorf("pagemap entry %#x: page not present or no PFN (not root?)", v)
	}
	return page{b: b, phys: pfn * pageSize}, nil
}
