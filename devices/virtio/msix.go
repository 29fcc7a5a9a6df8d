package virtio

import "github.com/govmm/govmm/devices"

// MSI-X (PCI 3.0 §6.8.2).
const (
	msixEnable       = 1 << 15 // Message Control: MSI-X Enable
	msixFunctionMask = 1 << 14 // Message Control: Function Mask
	msixEntrySize    = 16      // {Message Address, Message Upper Address, Message Data, Vector Control}
	msixEntryMasked  = 1 << 0  // Vector Control: Mask Bit; the other bits are reserved
)

// msixEntry is one MSI-X table entry. dirty means the message changed since
// it was last routed.
type msixEntry struct {
	addrLo, addrHi, data, ctrl uint32
	dirty                      bool
}

// msixState is the MSI-X table, PBA and Message Control bits. PCI.mu guards
// it; the length of entries never changes.
type msixState struct {
	enabled, masked bool
	entries         []msixEntry
	pba             []uint64 // Pending Bit Array, one bit per entry
}

// newMSIX returns a table of n entries, all masked as after reset.
func newMSIX(n int) msixState {
	m := msixState{entries: make([]msixEntry, n), pba: make([]uint64, (n+63)/64)}
	for i := range m.entries {
		m.entries[i].ctrl = msixEntryMasked
	}
	return m
}

func (e *msixEntry) message() devices.MSIMessage {
	return devices.MSIMessage{Addr: uint64(e.addrHi)<<32 | uint64(e.addrLo), Data: e.data}
}

// word returns dword w of the entry.
func (e *msixEntry) word(w uint64) uint32 {
	return [...]uint32{e.addrLo, e.addrHi, e.data, e.ctrl}[w]
}

// tableAccess says whether n bytes at table offset o are an access the
// table serves: aligned dword or qword (PCI 3.0 §6.8.2).
func tableAccess(o uint64, n int) bool {
	return (n == 4 || n == 8) && o%uint64(n) == 0
}

func (t *PCI) readMSIXTable(o uint64, data []byte) {
	if !tableAccess(o, len(data)) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < len(data); i += 4 {
		off := o + uint64(i)
		le.PutUint32(data[i:], t.msix.entries[off/msixEntrySize].word(off%msixEntrySize/4))
	}
}

func (t *PCI) writeMSIXTable(o uint64, data []byte) {
	if !tableAccess(o, len(data)) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 0; i < len(data); i += 4 {
		off := o + uint64(i)
		t.writeEntryLocked(int(off/msixEntrySize), off%msixEntrySize/4, le.Uint32(data[i:]))
	}
}

// writeEntryLocked writes dword w of entry v. A message is routed once the
// entry is unmasked, so a driver that masks, rewrites and unmasks an entry,
// as Linux does, causes one route update and not three.
func (t *PCI) writeEntryLocked(v int, w uint64, val uint32) {
	e := &t.msix.entries[v]
	field := [...]*uint32{&e.addrLo, &e.addrHi, &e.data}
	switch {
	case w < 3 && *field[w] != val:
		*field[w] = val
		e.dirty = true
	case w == 3:
		e.ctrl = val & msixEntryMasked
	}
	if e.ctrl&msixEntryMasked == 0 {
		t.routeLocked(v)
		t.deliverPendingLocked(v)
	}
}

func (t *PCI) readPBA(o uint64, data []byte) {
	if !tableAccess(o, len(data)) || o/8 >= uint64(len(t.msix.pba)) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	putLE(data, t.msix.pba[o/8]>>(8*(o%8)))
}

// setMSIXControl takes the Message Control register after a guest write.
func (t *PCI) setMSIXControl(ctl uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.msix.enabled = ctl&msixEnable != 0
	t.msix.masked = ctl&msixFunctionMask != 0
	t.updateINTxLocked()
	for v := range t.msix.entries {
		t.deliverPendingLocked(v)
	}
}

func (t *PCI) routeLocked(v int) {
	e := &t.msix.entries[v]
	if !e.dirty {
		return
	}
	if err := t.msi.Route(v, e.message()); err != nil {
		t.warnOnce(&t.warned.route, "cannot route MSI-X vector", "vector", v, "err", err)
		return
	}
	e.dirty = false
}

// signalLocked raises vector v, or marks it pending while it or the
// function is masked. NO_VECTOR and vectors past the table are dropped.
func (t *PCI) signalLocked(v uint16) {
	if int(v) >= len(t.msix.entries) {
		return
	}
	if t.msix.masked || t.msix.entries[v].ctrl&msixEntryMasked != 0 {
		t.msix.pba[v/64] |= 1 << (v % 64)
		return
	}
	t.sendLocked(int(v))
}

// deliverPendingLocked sends vector v if it is pending and no longer masked.
func (t *PCI) deliverPendingLocked(v int) {
	bit := uint64(1) << (v % 64)
	if t.msix.pba[v/64]&bit == 0 || !t.msix.enabled || t.msix.masked || t.msix.entries[v].ctrl&msixEntryMasked != 0 {
		return
	}
	t.msix.pba[v/64] &^= bit
	t.sendLocked(v)
}

func (t *PCI) sendLocked(v int) {
	t.routeLocked(v) // only if an earlier route failed
	if err := t.msi.Signal(v); err != nil {
		t.warnOnce(&t.warned.signal, "cannot signal MSI-X vector", "vector", v, "err", err)
	}
}
