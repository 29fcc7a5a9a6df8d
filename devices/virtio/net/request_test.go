package net

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

func TestParseTx(t *testing.T) {
	mem := virtiotest.NewRAM(t, memory.MiB)
	buf := func(a, n uint32) virtio.Buffer { return virtio.Buffer{Addr: memory.GuestAddress(a), Len: n} }
	for _, tc := range []struct {
		name  string
		chain virtio.Chain
		iovs  int
		drop  bool
		fail  bool
	}{
		{name: "header and frame in one", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, hdrLen+60)}}, iovs: 1},
		{name: "header split", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, 4), buf(64, 8), buf(128, 60)}}, iovs: 3},
		{name: "largest frame", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, maxPacket)}}, iovs: 1},
		{name: "smallest frame", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, hdrLen+minFrame)}}, iovs: 1},
		{name: "runt", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, hdrLen+minFrame-1)}}, drop: true},
		{name: "header only", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, hdrLen)}}, drop: true},
		{name: "oversized", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, maxPacket), buf(0, 1)}}, drop: true},
		{name: "no header", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, hdrLen-1)}}, fail: true},
		{name: "empty", fail: true},
		{name: "writable", chain: virtio.Chain{Readable: []virtio.Buffer{buf(0, 100)}, Writable: []virtio.Buffer{buf(256, 1)}}, fail: true},
		{name: "outside RAM", chain: virtio.Chain{Readable: []virtio.Buffer{buf(memory.MiB-10, 100)}}, fail: true},
	} {
		iov, err := parseTx(mem, tc.chain, allFeatures, nil)
		switch {
		case tc.drop != errors.Is(err, errDrop):
			t.Errorf("%s: parseTx error %v; want drop %v", tc.name, err, tc.drop)
		case tc.fail != (err != nil && !errors.Is(err, errDrop)):
			t.Errorf("%s: parseTx error %v; want fail %v", tc.name, err, tc.fail)
		case err == nil && len(iov) != tc.iovs:
			t.Errorf("%s: %d iovecs; want %d", tc.name, len(iov), tc.iovs)
		}
	}
	many := make([]virtio.Buffer, maxIov+1)
	for i := range many {
		many[i] = buf(0, 1)
	}
	if _, err := parseTx(mem, virtio.Chain{Readable: many}, allFeatures, nil); !errors.Is(err, errDrop) {
		t.Errorf("%d one-byte buffers: %v; want a drop, writev takes at most %d", len(many), err, maxIov)
	}
}

// allFeatures are every feature the device offers, as Linux takes them.
var allFeatures = (&Device{}).Features()

// A transmit header is held to the features the driver negotiated and to
// the frame behind it before the tap or the host's stack sees it.
func TestCheckTxHeader(t *testing.T) {
	const frame = 1514
	hdr := func(flags, gso byte, headers, gsoSize, csumStart, csumOff uint16) *[hdrLen]byte {
		var h [hdrLen]byte
		h[hdrFlags], h[hdrGSOType] = flags, gso
		le := binary.LittleEndian
		le.PutUint16(h[hdrHdrLen:], headers)
		le.PutUint16(h[hdrGSOSize:], gsoSize)
		le.PutUint16(h[hdrCsumStart:], csumStart)
		le.PutUint16(h[hdrCsumOffset:], csumOff)
		return &h
	}
	noOffloads := uint64(0)
	for _, tc := range []struct {
		name     string
		h        *[hdrLen]byte
		features uint64
		ok       bool
	}{
		{"plain frame", hdr(0, gsoNone, 0, 0, 0, 0), noOffloads, true},
		{"checksum offload, negotiated", hdr(flagNeedsCsum, gsoNone, 0, 0, 34, 16), allFeatures, true},
		{"checksum offload, not negotiated", hdr(flagNeedsCsum, gsoNone, 0, 0, 34, 16), noOffloads, false},
		{"checksum field at the frame's last two bytes", hdr(flagNeedsCsum, gsoNone, 0, 0, frame-2, 0), allFeatures, true},
		{"checksum field past the frame", hdr(flagNeedsCsum, gsoNone, 0, 0, frame-2, 1), allFeatures, false},
		{"checksum offsets that wrap 16 bits", hdr(flagNeedsCsum, gsoNone, 0, 0, 0xffff, 0xffff), allFeatures, false},
		{"DATA_VALID is the device's", hdr(2, gsoNone, 0, 0, 0, 0), allFeatures, false},
		{"RSC_INFO is the device's", hdr(4, gsoNone, 0, 0, 0, 0), allFeatures, false},
		{"TSO4", hdr(flagNeedsCsum, gsoTCPv4, 66, 1448, 34, 16), allFeatures, true},
		{"TSO6", hdr(flagNeedsCsum, gsoTCPv6, 86, 1428, 54, 16), allFeatures, true},
		{"TSO4 not negotiated", hdr(flagNeedsCsum, gsoTCPv4, 66, 1448, 34, 16), featureCsum | featureHostTSO6, false},
		{"TSO6 not negotiated", hdr(flagNeedsCsum, gsoTCPv6, 86, 1428, 54, 16), featureCsum | featureHostTSO4, false},
		{"TSO with ECN, never offered", hdr(flagNeedsCsum, gsoTCPv4|gsoECN, 66, 1448, 34, 16), allFeatures, false},
		{"UFO, never offered", hdr(flagNeedsCsum, 3, 42, 1472, 34, 6), allFeatures, false},
		{"USO, never offered", hdr(flagNeedsCsum, 5, 42, 1472, 34, 6), allFeatures, false},
		{"an unknown GSO type", hdr(flagNeedsCsum, 0x7f, 66, 1448, 34, 16), allFeatures, false},
		{"GSO without NEEDS_CSUM", hdr(0, gsoTCPv4, 66, 1448, 0, 0), allFeatures, false},
		{"GSO with gso_size 0", hdr(flagNeedsCsum, gsoTCPv4, 66, 0, 34, 16), allFeatures, false},
		{"GSO with hdr_len past the frame", hdr(flagNeedsCsum, gsoTCPv4, frame+1, 1448, 34, 16), allFeatures, false},
	} {
		err := checkTxHeader(tc.h, tc.features, frame)
		if (err == nil) != tc.ok {
			t.Errorf("%s: checkTxHeader = %v; want ok %v", tc.name, err, tc.ok)
		}
	}
}

// A header split across buffers is read whole: the check cannot be dodged
// by cutting the header where it would not look.
func TestParseTxChecksASplitHeader(t *testing.T) {
	mem := virtiotest.NewRAM(t, memory.MiB)
	pkt := packet(0, 100)
	pkt[hdrGSOType] = gsoTCPv4 // without NEEDS_CSUM: refused
	if err := mem.WriteAt(pkt[:1], 0); err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteAt(pkt[1:], 4096); err != nil {
		t.Fatal(err)
	}
	c := virtio.Chain{Readable: []virtio.Buffer{{Addr: 0, Len: 1}, {Addr: 4096, Len: uint32(len(pkt) - 1)}}}
	if _, err := parseTx(mem, c, allFeatures, nil); !errors.Is(err, errDrop) {
		t.Errorf("GSO header split after its first byte: %v; want a drop", err)
	}
	pkt[hdrGSOType] = gsoNone
	mem.WriteAt(pkt[1:], 4096)
	if _, err := parseTx(mem, c, allFeatures, nil); err != nil {
		t.Errorf("plain header split after its first byte: %v", err)
	}
}

func TestCheckRxAndCopy(t *testing.T) {
	mem := virtiotest.NewRAM(t, memory.MiB)
	c := virtio.Chain{Writable: []virtio.Buffer{{Addr: 0, Len: 5}, {Addr: 100, Len: 7}, {Addr: 200, Len: 50}}}
	if err := checkRx(c); err != nil {
		t.Fatalf("checkRx(header across two buffers) = %v", err)
	}
	if err := checkRx(virtio.Chain{Writable: c.Writable[:2], Readable: []virtio.Buffer{{Len: 100}}}); err != nil {
		t.Fatalf("checkRx(exactly a header) = %v", err)
	}
	if err := checkRx(virtio.Chain{Writable: c.Writable[:1], Readable: []virtio.Buffer{{Len: 100}}}); err == nil {
		t.Fatal("checkRx accepted a chain with 5 writable bytes")
	}
	p := packet(0, 40)
	if n, err := copyToChain(mem, c, p); err != nil || n != len(p) {
		t.Fatalf("copyToChain = %d, %v; want %d", n, err, len(p))
	}
	if n, err := copyToChain(mem, c, make([]byte, 100)); err != nil || n != 62 {
		t.Fatalf("copyToChain(100 bytes into 62) = %d, %v; want 62", n, err)
	}
}
