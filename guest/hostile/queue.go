package hostile

import (
	"encoding/binary"
	"fmt"
	"time"
)

var le = binary.LittleEndian

// Descriptor flags (virtio 1.2 §2.7.5).
const (
	fNext     = 1
	fWrite    = 2
	fIndirect = 4
	descSize  = 16
)

// vq is a split virtqueue the driver laid out on three pages of its own:
// descriptor table, available ring, used ring (virtio 1.2 §2.7). Up to
// 256 descriptors fit a page.
type vq struct {
	d                 *dev
	q, size           int
	desc, avail, used page
	availIdx          uint16
}

// setupQueue lays out queue q with size descriptors, programs and enables it.
func (d *dev) setupQueue(m *dma, q, size int) (*vq, error) {
	v := &vq{d: d, q: q, size: size}
	var err error
	for _, p := range []*page{&v.desc, &v.avail, &v.used} {
		if *p, err = m.page(); err != nil {
			return nil, err
		}
	}
	v.program()
	return v, nil
}

// program tells the device where the queue is and enables it.
func (v *vq) program() {
	d, size := v.d, v.size
	v.availIdx = 0
	clear(v.avail.b)
	clear(v.used.b)
	d.selectQueue(v.q)
	d.wr(d.common+regQueueSize, 2, uint64(size))
	d.wr(d.common+regQueueVector, 2, noVector)
	d.wr(d.common+regQueueDesc, 8, v.desc.phys)
	d.wr(d.common+regQueueDriver, 8, v.avail.phys)
	d.wr(d.common+regQueueDevice, 8, v.used.phys)
	d.wr(d.common+regQueueEnable, 2, 1)
}

// setDesc writes descriptor i; an i past the page is dropped.
func (v *vq) setDesc(i int, addr uint64, n uint32, flags, next uint16) {
	putDesc(v.desc.b, i, addr, n, flags, next)
}

func putDesc(b []byte, i int, addr uint64, n uint32, flags, next uint16) {
	o := i * descSize
	if o < 0 || o+descSize > len(b) {
		return
	}
	le.PutUint64(b[o:], addr)
	le.PutUint32(b[o+8:], n)
	le.PutUint16(b[o+12:], flags)
	le.PutUint16(b[o+14:], next)
}

// push puts head in the available ring and publishes it: the ring entry
// before the index, as a driver must (virtio 1.2 §2.7.13).
func (v *vq) push(head uint16) {
	slot := 4 + 2*(int(v.availIdx)%max(v.size, 1))
	if slot+2 <= len(v.avail.b) {
		le.PutUint16(v.avail.b[slot:], head)
	}
	v.availIdx++
	v.setAvailIdx(v.availIdx)
}

func (v *vq) setAvailIdx(i uint16) {
	le.PutUint16(v.avail.b[2:], i)
}

func (v *vq) kick() { v.d.kick(v.q) }

func (v *vq) usedIdx() uint16 {
	return le.Uint16(v.used.b[2:])
}

// waitUsed waits up to d for the used index to reach n; it says whether
// it did.
func (v *vq) waitUsed(n uint16, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for v.usedIdx() != n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// usedLen is the length the device wrote in used ring entry i.
func (v *vq) usedLen(i int) uint32 {
	return le.Uint32(v.used.b[4+8*(i%v.size)+4:])
}

// storeFence orders the ring writes before what follows: a read of the
// ISR, which the device serves after the writes are visible in RAM (x86
// stores are not reordered with each other; the read keeps the compiler
// from caching the ring).
func (d *dev) storeFence() { _ = d.rd(d.devcfg, 1) }

func (v *vq) String() string { return fmt.Sprintf("%s queue %d size %d", v.d.name, v.q, v.size) }
