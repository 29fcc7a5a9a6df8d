package net

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

var desc = virtiotest.RawDesc

const (
	fNext     = virtiotest.DescFNext
	fWrite    = virtiotest.DescFWrite
	fIndirect = virtiotest.DescFIndirect
)

// FuzzNetTx feeds descriptor tables a guest could write through the queue's
// chain walker and parseTx: nothing may panic, and an accepted frame must be
// exactly the chain's readable bytes, within the frame bounds. The input is
// a flags byte (bit 0: INDIRECT_DESC), then the descriptor tables.
func FuzzNetTx(f *testing.F) {
	raw := virtiotest.NewRawQueue(f, memory.MiB)
	mem := raw.RAM()
	join := func(flags byte, ds ...[]byte) []byte { return slices.Concat(append([][]byte{{flags}}, ds...)...) }
	f.Add(join(0, desc(0x10000, hdrLen+60, 0, 0)))
	f.Add(join(0, desc(0x10000, hdrLen, fNext, 1), desc(0x20000, 1500, 0, 0)))
	f.Add(join(0, desc(0x10000, 8, fNext, 1), desc(0x20000, maxPacket, 0, 0)))  // too long
	f.Add(join(0, desc(0x10000, 100, fNext, 1), desc(0x20000, 100, fWrite, 0))) // writable
	f.Add(join(0, desc(0x10000, 100, fNext, 1), desc(0x20000, 100, fNext, 0)))  // loop
	f.Add(join(0, desc(memory.MiB-8, 100, 0, 0)))                               // outside RAM
	f.Add(join(0, desc(^memory.GuestAddress(0)-4, 100, 0, 0)))                  // wraps
	head := desc(virtiotest.RawIndirect, 32, fIndirect, 0)
	indirect := virtiotest.RawTables(head, slices.Concat(desc(0x10000, hdrLen, fNext, 1), desc(0x20000, 60, 0, 0)))
	f.Add(join(1, indirect))                         // valid indirect chain
	f.Add(join(0, indirect))                         // INDIRECT not negotiated
	f.Add(join(1, virtiotest.RawTables(head, head))) // nested
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		_, c, ok := raw.Pop(t, data[1:], data[0]&1 != 0)
		if !ok {
			return
		}
		iov, err := parseTx(mem, c, allFeatures, nil)
		if err != nil {
			return
		}
		var n uint64
		for i, s := range iov {
			if uint32(len(s)) != c.Readable[i].Len {
				t.Fatalf("iovec %d has %d bytes; its buffer %d", i, len(s), c.Readable[i].Len)
			}
			n += uint64(len(s))
		}
		if len(c.Writable) > 0 || n != c.ReadableLen() || n < hdrLen+minFrame || n > maxPacket {
			t.Fatalf("accepted a %d-byte frame from %+v", n, c)
		}
	})
}

// FuzzNetTxHeader checks the transmit header against what §5.1.6.2 lets a
// driver ask of the device: an accepted header asks only for offloads the
// features allow, with offsets inside the frame, and accepting is monotonic:
// more features or a longer frame never turn an accepted header away.
func FuzzNetTxHeader(f *testing.F) {
	hdr := func(flags, gso byte, hl, size, start, off uint16) []byte {
		h := []byte{flags, gso}
		for _, v := range []uint16{hl, size, start, off, 0} {
			h = binary.LittleEndian.AppendUint16(h, v)
		}
		return h
	}
	f.Add(hdr(0, gsoNone, 0, 0, 0, 0), uint64(0), uint32(60))
	f.Add(hdr(flagNeedsCsum, gsoNone, 0, 0, 34, 16), uint64(featureCsum), uint32(1500))
	f.Add(hdr(flagNeedsCsum, gsoTCPv4, 54, 1448, 34, 16), allFeatures, uint32(65000))
	f.Add(hdr(flagNeedsCsum, gsoTCPv6, 74, 1428, 54, 16), uint64(featureCsum|featureHostTSO6), uint32(30000))
	f.Add(hdr(flagNeedsCsum, gsoTCPv4|gsoECN, 54, 1448, 34, 16), allFeatures, uint32(65000))
	f.Add(hdr(flagNeedsCsum, gsoTCPv4, 54, 0, 34, 16), allFeatures, uint32(65000))
	f.Add(hdr(2, gsoNone, 0, 0, 0, 0), allFeatures, uint32(60)) // DATA_VALID is the device's
	f.Fuzz(func(t *testing.T, b []byte, features uint64, frame uint32) {
		var h [hdrLen]byte
		copy(h[:], b)
		n := int(frame % (maxFrame + 1))
		err := checkTxHeader(&h, features, n)
		le := binary.LittleEndian
		flags, gso := h[hdrFlags], h[hdrGSOType]
		start, off := int(le.Uint16(h[hdrCsumStart:])), int(le.Uint16(h[hdrCsumOffset:]))
		if err != nil {
			if checkTxHeader(&h, features&allFeatures, n) == nil {
				t.Fatalf("header % x refused with features %#x but accepted with fewer: %v", h, features, err)
			}
			return
		}
		switch {
		case flags&^flagNeedsCsum != 0:
			t.Fatalf("accepted flags %#x", flags)
		case flags&flagNeedsCsum != 0 && (features&featureCsum == 0 || start+off+2 > n):
			t.Fatalf("accepted a checksum at %d+%d in a %d-byte frame with features %#x", start, off, n, features)
		case gso != gsoNone && (flags&flagNeedsCsum == 0 || le.Uint16(h[hdrGSOSize:]) == 0 || int(le.Uint16(h[hdrHdrLen:])) > n):
			t.Fatalf("accepted GSO header % x for a %d-byte frame", h, n)
		case gso == gsoTCPv4 && features&featureHostTSO4 == 0, gso == gsoTCPv6 && features&featureHostTSO6 == 0,
			gso != gsoNone && gso != gsoTCPv4 && gso != gsoTCPv6:
			t.Fatalf("accepted GSO type %#x with features %#x", gso, features)
		}
		if err := checkTxHeader(&h, features|allFeatures, n); err != nil {
			t.Fatalf("header % x accepted with features %#x, refused with more: %v", h, features, err)
		}
		if err := checkTxHeader(&h, features, maxFrame); err != nil {
			t.Fatalf("header % x accepted for a %d-byte frame, refused for a longer one: %v", h, n, err)
		}
	})
}

// Receive features the fuzzer picks among, by bit of its first argument.
var rxFeatureBits = []uint64{featureMrgRxbuf, featureGuestCsum, virtio.FeatureRingIndirectDesc}

const rxFuzzRAM = 128 * memory.KiB

// FuzzNetRx delivers one packet of a fuzzer-chosen length into receive
// chains a guest could write, through gather and place as the receiver's
// loop runs them, without its goroutine. Whatever the chains, the device
// writes only their writable buffers and the used ring; a delivered packet
// fills the chains in order, each used length is what the chain got, and
// the header says how many chains hold the packet.
func FuzzNetRx(f *testing.F) {
	raw := virtiotest.NewRawQueue(f, rxFuzzRAM)
	all, before := raw.Image(), make([]byte, rxFuzzRAM)
	const d = virtiotest.RawData
	f.Add(byte(0), uint16(1000), []byte{0}, slices.Concat(desc(d, hdrLen, fWrite|fNext, 1), desc(d+0x100, 1514, fWrite, 0)))
	f.Add(byte(1), uint16(3000), []byte{0, 1, 2}, slices.Concat(
		desc(d, 1500, fWrite, 0), desc(d+0x1000, 1500, fWrite, 0), desc(d+0x2000, 1500, fWrite, 0)))
	f.Add(byte(2), uint16(500), []byte{0}, desc(d, 200, fWrite, 0))                                             // too small: dropped
	f.Add(byte(1), uint16(60), []byte{0}, desc(d, hdrLen-1, fWrite, 0))                                         // no room for the header
	f.Add(byte(0), uint16(60), []byte{0}, slices.Concat(desc(d, 100, fNext, 1), desc(d+0x100, 100, fWrite, 0))) // readable in front
	f.Add(byte(4), uint16(100), []byte{0}, virtiotest.RawTables(desc(virtiotest.RawIndirect, 32, fIndirect, 0),
		slices.Concat(desc(d, hdrLen, fWrite|fNext, 1), desc(d+0x100, 4000, fWrite, 0))))
	f.Add(byte(1), uint16(2000), []byte{0, 0}, desc(d, 1500, fWrite, 0))                                          // one chain twice
	f.Add(byte(1), uint16(200), []byte{0, 1}, slices.Concat(desc(d, 100, fWrite, 0), desc(d+50, 100, fWrite, 0))) // overlapping
	f.Fuzz(func(t *testing.T, pick byte, size uint16, heads, descs []byte) {
		var features uint64
		for i, b := range rxFeatureBits {
			if pick>>i&1 != 0 {
				features |= b
			}
		}
		ring := make([]uint16, min(len(heads), virtiotest.RawSize))
		for i := range ring {
			ring[i] = uint16(heads[i] & 0x1f)
		}
		q := raw.Queue(t, descs, ring, features)
		copy(before, all)
		r := newReceiver(q, nil, features, virtio.NewWarner("fuzz", "rx"))
		pkt := packet(pick>>4, minFrame+int(size)%(maxFrame-minFrame+1))
		checkDelivery(t, r, raw, pkt, before, all)
	})
}

// checkDelivery runs one delivery of pkt and checks guest memory, all,
// against its image before.
func checkDelivery(t *testing.T, r *receiver, raw *virtiotest.RawQueue, pkt, before, all []byte) {
	usedRing := virtio.Buffer{Addr: virtiotest.RawUsed, Len: virtiotest.RawUsedLen}
	ready, err := r.gather(len(pkt))
	if err != nil || !ready || r.room < uint64(len(pkt)) {
		if ready && err == nil && r.mergeable {
			t.Fatalf("gather ready with %d bytes of room for %d with mergeable buffers", r.room, len(pkt))
		}
		virtiotest.Unchanged(t, before, all, usedRing) // dropped or waiting: nothing delivered
		return
	}
	chains := slices.Clone(r.chains)
	want := bytes.Clone(pkt)
	binary.LittleEndian.PutUint16(want[hdrNumBuffers:], uint16(len(chains)))
	if !r.guestCsum {
		want[hdrFlags] = 0
	}
	err = r.place(pkt)
	may := []virtio.Buffer{usedRing}
	for _, c := range chains {
		may = append(may, c.Writable...)
	}
	virtiotest.Unchanged(t, before, all, may...)
	if err != nil {
		return
	}
	if !r.mergeable && len(chains) != 1 {
		t.Fatalf("a packet in %d chains without mergeable buffers", len(chains))
	}
	// A guest whose buffers overlap each other or the rings gets what it
	// asked for; what it then reads back is its own business.
	if !disjoint(append(may[1:], virtio.Buffer{Addr: 0, Len: uint32(virtiotest.RawData)})) {
		return
	}
	var got []byte
	left := uint64(len(want))
	for i, c := range chains {
		u, idx := raw.UsedElem(t, i)
		wantLen := min(c.WritableLen(), left)
		if int(idx) != len(chains) || u.ID != uint32(c.Head) || uint64(u.Len) != wantLen || wantLen == 0 {
			t.Fatalf("used element %d of %d: %+v, idx %d; want head %d with %d bytes", i, len(chains), u, idx, c.Head, wantLen)
		}
		left -= wantLen
		got = append(got, readBuffers(all, c.Writable, wantLen)...)
	}
	if left != 0 || !bytes.Equal(got, want) {
		t.Fatalf("the chains hold a packet other than the one delivered (%d bytes short)", left)
	}
}

// readBuffers returns the first n bytes of guest memory, all, behind bufs.
func readBuffers(all []byte, bufs []virtio.Buffer, n uint64) []byte {
	var out []byte
	for _, b := range bufs {
		k := min(uint64(b.Len), n-uint64(len(out)))
		out = append(out, all[b.Addr:uint64(b.Addr)+k]...)
	}
	return out
}

// disjoint says whether no two of bufs share a byte.
func disjoint(bufs []virtio.Buffer) bool {
	for i, a := range bufs {
		for _, b := range bufs[i+1:] {
			if a.Addr < b.Addr+memory.GuestAddress(b.Len) && b.Addr < a.Addr+memory.GuestAddress(a.Len) {
				return false
			}
		}
	}
	return true
}
