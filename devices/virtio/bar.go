package virtio

import (
	"errors"
	"os"
)

// bar0 is the contents of BAR 0. Every access is checked here: an access
// that is not 1, 2, 4 or 8 bytes, not naturally aligned or not inside BAR 0
// reads as zero and writes nothing; each structure then checks its own
// registers' offsets and widths.
type bar0 struct{ t *PCI }

// barAccess says whether n bytes at off are one naturally aligned access
// inside BAR 0.
func barAccess(off uint64, n int) bool {
	return (n == 1 || n == 2 || n == 4 || n == 8) && off < BARSize && off%uint64(n) == 0 && off+uint64(n) <= BARSize
}

// inRegion says whether an access of n bytes at off lies in [start, start+size),
// and returns off relative to start.
func inRegion(off uint64, n int, start, size uint64) (uint64, bool) {
	if off < start || off-start >= size || off-start+uint64(n) > size {
		return 0, false
	}
	return off - start, true
}

func (b bar0) Read(off uint64, data []byte) {
	clear(data)
	if !barAccess(off, len(data)) {
		return
	}
	t, n := b.t, len(data)
	if o, ok := inRegion(off, n, commonOffset, commonLen); ok {
		t.readCommon(o, data)
	} else if o, ok := inRegion(off, n, isrOffset, isrLen); ok && o == 0 {
		data[0] = t.readISR()
	} else if o, ok := inRegion(off, n, deviceOffset, deviceLen); ok {
		t.dev.ReadConfig(o, data)
	} else if o, ok := inRegion(off, n, msixTableOffset, uint64(len(t.msix.entries))*msixEntrySize); ok {
		t.readMSIXTable(o, data)
	} else if o, ok := inRegion(off, n, msixPBAOffset, msixPBALen); ok {
		t.readPBA(o, data)
	}
}

func (b bar0) Write(off uint64, data []byte) {
	if !barAccess(off, len(data)) {
		return
	}
	t, n := b.t, len(data)
	if o, ok := inRegion(off, n, commonOffset, commonLen); ok {
		t.writeCommon(o, data)
	} else if o, ok := inRegion(off, n, deviceOffset, deviceLen); ok {
		t.dev.WriteConfig(o, data)
	} else if o, ok := inRegion(off, n, notifyOffset, uint64(len(t.kicks))*notifyOffMul); ok {
		t.notify(o, n)
	} else if o, ok := inRegion(off, n, msixTableOffset, uint64(len(t.msix.entries))*msixEntrySize); ok {
		t.writeMSIXTable(o, data)
	}
}

// notify serves a queue notification that did not go through an ioeventfd:
// the driver writes the queue index, 16 bits (virtio 1.2 §4.1.5.2), at the
// queue's notify register; the value is not needed to know the queue.
func (t *PCI) notify(off uint64, n int) {
	if n != 2 && n != 4 || off%notifyOffMul != 0 {
		return
	}
	q := off / notifyOffMul
	if err := t.kicks[q].Write(1); err != nil && !errors.Is(err, os.ErrClosed) {
		t.warnOnce(&t.warned.kick, "cannot kick queue", "queue", q, "err", err)
	}
}
