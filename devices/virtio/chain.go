package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// Descriptor flags (virtio 1.2 §2.7.5).
const (
	descFNext     = 1
	descFWrite    = 2
	descFIndirect = 4
)

// descSize is the size of struct virtq_desc (virtio 1.2 §2.7.5).
const descSize = 16

// Buffer is one descriptor's guest memory, checked to lie inside guest RAM.
type Buffer struct {
	Addr memory.GuestAddress
	Len  uint32
}

// Chain is one validated descriptor chain: device-readable buffers first,
// then device-writable ones (virtio 1.2 §2.7.4.2). Zero-length buffers are
// left out. The buffer lists are the queue's, reused for the next chain: they
// stay valid until the next Pop or Poll. A device that holds a chain while it
// pops more keeps a copy (AppendTo).
type Chain struct {
	Head               uint16 // the head descriptor index, for Queue.Push
	Readable, Writable []Buffer
}

// AppendTo copies c's buffer lists to the end of room and returns the copy,
// which outlives the queue's next Pop, and room grown. Room reused from one
// batch of held chains to the next makes holding them cost no allocation.
func (c Chain) AppendTo(room []Buffer) (Chain, []Buffer) {
	start := len(room)
	room = append(room, c.Readable...)
	mid := len(room)
	room = append(room, c.Writable...)
	k := Chain{Head: c.Head}
	if mid > start {
		k.Readable = room[start:mid:mid]
	}
	if end := len(room); end > mid {
		k.Writable = room[mid:end:end]
	}
	return k, room
}

// ReadableLen is the total length of the device-readable buffers.
func (c Chain) ReadableLen() uint64 { return totalLen(c.Readable) }

// WritableLen is the total length of the device-writable buffers.
func (c Chain) WritableLen() uint64 { return totalLen(c.Writable) }

func totalLen(bufs []Buffer) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(b.Len)
	}
	return n
}

// desc is struct virtq_desc (virtio 1.2 §2.7.5), read once from guest memory
// so that a driver rewriting it cannot change it between check and use.
type desc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func readDesc(mem *memory.RAM, table memory.GuestAddress, i uint16) (desc, error) {
	var b [descSize]byte
	if err := mem.ReadAt(b[:], table+memory.GuestAddress(i)*descSize); err != nil {
		return desc{}, fmt.Errorf("descriptor %d: %w", i, err)
	}
	return desc{
		addr:  binary.LittleEndian.Uint64(b[0:]),
		len:   binary.LittleEndian.Uint32(b[8:]),
		flags: binary.LittleEndian.Uint16(b[12:]),
		next:  binary.LittleEndian.Uint16(b[14:]),
	}, nil
}

// chainWalker builds one chain from a queue of size descriptors. Every walk is
// bounded by budget, so a looping chain ends in an error.
type chainWalker struct {
	mem      *memory.RAM
	size     uint16
	indirect bool     // VIRTIO_F_INDIRECT_DESC was negotiated
	budget   int      // buffers the chain may still hold
	writable bool     // a device-writable buffer was seen
	bufs     []Buffer // the non-empty buffers so far: readable ones, then writable ones
	readable int      // how many of bufs are device-readable
}

// readChain validates the chain that starts at descriptor head of the table at
// table (virtio 1.2 §2.7.5). The table must lie in guest RAM. It collects the
// buffers in scratch (nil will do), which it returns for the next call, and
// the chain's lists are slices of it: once scratch has grown to the longest
// chain, a chain costs no allocation.
func readChain(scratch []Buffer, mem *memory.RAM, table memory.GuestAddress, size, head uint16, indirect bool) (Chain, []Buffer, error) {
	w := chainWalker{mem: mem, size: size, indirect: indirect, budget: int(size), bufs: scratch[:0]}
	err := w.walk(table, head)
	all := w.bufs
	if err != nil {
		return Chain{}, all[:0], fmt.Errorf("chain at head %d: %w", head, err)
	}
	c := Chain{Head: head}
	if w.readable > 0 {
		c.Readable = all[:w.readable:w.readable]
	}
	if w.readable < len(all) {
		c.Writable = all[w.readable:len(all):len(all)]
	}
	return c, all[:0], nil
}

func (w *chainWalker) walk(table memory.GuestAddress, i uint16) error {
	if i >= w.size {
		return fmt.Errorf("head index is not below the queue size %d", w.size)
	}
	for {
		d, err := readDesc(w.mem, table, i)
		if err != nil {
			return err
		}
		if d.flags&descFIndirect != 0 {
			if err := w.walkIndirect(d); err != nil {
				return fmt.Errorf("descriptor %d: %w", i, err)
			}
			return nil
		}
		if err := w.add(d); err != nil {
			return fmt.Errorf("descriptor %d: %w", i, err)
		}
		if d.flags&descFNext == 0 {
			return nil
		}
		if d.next >= w.size {
			return fmt.Errorf("descriptor %d: next %d is not below the queue size %d", i, d.next, w.size)
		}
		i = d.next
	}
}

// walkIndirect follows the indirect table d points at (virtio 1.2 §2.7.5.3).
func (w *chainWalker) walkIndirect(d desc) error {
	switch {
	case !w.indirect:
		return errors.New("INDIRECT flag but VIRTIO_F_INDIRECT_DESC was not negotiated")
	case d.flags&descFNext != 0:
		return errors.New("both INDIRECT and NEXT flags")
	case d.len == 0 || d.len%descSize != 0:
		return fmt.Errorf("indirect table length %d is not a non-zero multiple of %d", d.len, descSize)
	case d.len/descSize > uint32(w.size):
		return fmt.Errorf("indirect table of %d descriptors is larger than the queue size %d", d.len/descSize, w.size)
	}
	table := memory.GuestAddress(d.addr)
	if _, err := w.mem.Slice(table, uint64(d.len)); err != nil {
		return fmt.Errorf("indirect table: %w", err)
	}
	n := uint16(d.len / descSize)
	for i, steps := uint16(0), uint16(0); ; steps++ {
		if steps == n {
			return fmt.Errorf("indirect table at %v: chain loops", table)
		}
		e, err := readDesc(w.mem, table, i)
		if err != nil {
			return fmt.Errorf("indirect table at %v: %w", table, err)
		}
		if e.flags&descFIndirect != 0 {
			return fmt.Errorf("indirect table at %v: descriptor %d: nested INDIRECT flag", table, i)
		}
		if err := w.add(e); err != nil {
			return fmt.Errorf("indirect table at %v: descriptor %d: %w", table, i, err)
		}
		if e.flags&descFNext == 0 {
			return nil
		}
		if e.next >= n {
			return fmt.Errorf("indirect table at %v: descriptor %d: next %d is not below the table length %d", table, i, e.next, n)
		}
		i = e.next
	}
}

// add appends one buffer descriptor to the chain.
func (w *chainWalker) add(d desc) error {
	if w.budget == 0 {
		return fmt.Errorf("chain is longer than the queue size %d (a loop?)", w.size)
	}
	w.budget--
	write := d.flags&descFWrite != 0
	if w.writable && !write {
		return errors.New("device-readable buffer after a device-writable one")
	}
	w.writable = write
	b := Buffer{Addr: memory.GuestAddress(d.addr), Len: d.len}
	if _, err := w.mem.Slice(b.Addr, uint64(b.Len)); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	if b.Len == 0 {
		return nil
	}
	w.bufs = append(w.bufs, b)
	if !write {
		w.readable++
	}
	return nil
}
