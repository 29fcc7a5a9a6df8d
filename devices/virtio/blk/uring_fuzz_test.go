package blk

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// ringReq is one request of FuzzRingQueue, placed in guest memory.
type ringReq struct {
	head       uint16
	kind       uint32
	off, n     int64 // the byte range an in or out request names
	data       []virtio.Buffer
	status     virtio.Buffer // the chain's last writable byte; Len 0 if none
	plain      bool          // data buffers, then a one-byte status buffer
	out        []byte        // what an out request carries
	writable   []virtio.Buffer
	wholeImage bool // a discard or write-zeroes: its ranges are not tracked
	// cut is a header cut short: the device reads the rest of it from the
	// data that follows, so neither the range nor the data is the one laid
	// out (a write may land anywhere).
	cut bool
}

// ringReqSize is the bytes of fuzz input per request: kind, sector, number
// of data buffers, their length (le16), status framing.
const ringReqSize = 6

var ringKinds = []uint32{typeIn, typeOut, typeFlush, typeGetID, typeDiscard, typeWriteZeroes, 99}

// addRingReq lays out one request from in as a driver would, its writable
// bytes filled with 0xff so that a status the device never wrote shows.
// A kind byte with its top bit set cuts the header short and a status byte
// with its top bit set leaves the status out: such chains break the queue.
func addRingReq(drv *virtiotest.Driver, in []byte, seed byte) ringReq {
	k, sector, nd := in[0], uint64(in[1]%(fuzzSectors+2)), int(in[2]%4)
	l := uint32(binary.LittleEndian.Uint16(in[3:]) % 2048)
	w := in[5]
	r := ringReq{kind: ringKinds[int(k&0x7f)%len(ringKinds)]}
	h := header(r.kind, sector)
	if k&0x80 != 0 {
		h = h[:k%headerSize]
		r.cut, r.wholeImage = true, true
	}
	var descs []virtiotest.Desc
	add := func(n uint32, p []byte, flags uint16) virtio.Buffer {
		if p == nil {
			p = bytes.Repeat([]byte{0xff}, int(n))
		}
		b := drv.Alloc(n, p)
		descs = append(descs, virtiotest.Desc{Addr: b.Addr, Len: b.Len, Flags: flags})
		if flags&virtiotest.DescFWrite != 0 {
			r.writable = append(r.writable, b)
		}
		return b
	}
	add(uint32(len(h)), h, 0)
	r.off = int64(sector) * SectorSize
	for i := range nd {
		switch r.kind {
		case typeOut:
			p := pattern(int(l), seed+byte(i))
			r.data = append(r.data, add(l, p, 0))
			r.out = append(r.out, p...)
		case typeDiscard, typeWriteZeroes:
			r.wholeImage = true
			add(segmentSize, segment(sector, l%64, uint32(w>>4)&3), 0)
		default:
			r.data = append(r.data, add(l, nil, virtiotest.DescFWrite))
		}
		r.n += int64(l)
	}
	if w&0x80 == 0 {
		add(1+uint32(w&1), nil, virtiotest.DescFWrite)
		r.plain = w&1 == 0
	}
	// The status is the last byte of the last writable buffer (virtio 1.2
	// §5.2.6), whichever that is.
	for _, b := range r.writable {
		if b.Len > 0 {
			r.status = virtio.Buffer{Addr: b.Addr + memory.GuestAddress(b.Len-1), Len: 1}
		}
	}
	r.head = drv.AddDescs(descs, true)
	return r
}

// FuzzRingQueue drives chains a guest controls through the io_uring path,
// against an image file, one activation per input: the rings outlive every
// reset, as a guest that resets its disk again and again would see. An
// input's first byte may ask for the reset at once, with requests in flight.
// Nothing may panic; every used chain has its status written and names a
// head this activation offered, once; unless a chain broke the queue, one
// not used was not written into; an accepted write lands in the image and an accepted read returns
// its bytes (where no other write of the input overlaps); the image keeps
// its size.
func FuzzRingQueue(f *testing.F) {
	req := func(kind, sector, nd byte, l uint16, w byte) []byte {
		return append([]byte{kind, sector, nd}, binary.LittleEndian.AppendUint16(nil, l)...)[:5:5]
	}
	seed := func(resetAtOnce byte, reqs ...[]byte) []byte {
		out := []byte{resetAtOnce}
		for _, r := range reqs {
			out = append(out, r...)
		}
		return out
	}
	f.Add(seed(0, append(req(1, 3, 1, 1024, 0), 0), append(req(0, 3, 2, 512, 0), 0)))
	f.Add(seed(0, append(req(0, 30, 1, 1536, 0), 0), append(req(2, 0, 0, 0, 0), 1)))
	f.Add(seed(1, append(req(1, 0, 3, 512, 0), 0), append(req(0, 10, 1, 512, 0), 0), append(req(2, 0, 0, 0, 0), 0)))
	f.Add(seed(0, append(req(3, 0, 1, 20, 0), 0), append(req(4, 0, 1, 0, 0), 0x10)))
	f.Add(seed(0, append(req(0x85, 0, 1, 512, 0), 0), append(req(0, 0, 1, 512, 0), 0x80)))
	f.Add(seed(0, append(req(6, 0, 0, 0, 0), 0), append(req(0, 33, 1, 1000, 0), 0)))

	content := pattern(fuzzSectors*SectorSize, 9)
	path := newImage(f, content)
	d := openDisk(f, Options{Path: path, IO: IOUring})
	mem := virtiotest.NewRAM(f, 2*memory.MiB)
	features := d.Features() | virtio.FeatureVersion1
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 1 {
			return
		}
		resetAtOnce := in[0]&1 != 0
		in = in[1:]
		drv := virtiotest.NewDriver(t, mem, 0, queueSize, memory.MiB)
		if err := d.Activate(virtio.Activation{Mem: mem, Features: features, Queues: []*virtio.Queue{drv.Queue(features)}}); err != nil {
			t.Fatal(err)
		}
		var reqs []ringReq
		for i := 0; len(in) >= ringReqSize && i < 8; i++ {
			reqs = append(reqs, addRingReq(drv, in[:ringReqSize], byte(i)))
			in = in[ringReqSize:]
		}
		drv.Kick()
		var used []virtiotest.Used
		for !resetAtOnce && len(used) < len(reqs) {
			u, ok := drv.WaitUsedOrBroken()
			if !ok {
				break
			}
			used = append(used, u)
		}
		d.Reset()
		for u, ok := drv.PollUsed(); ok; u, ok = drv.PollUsed() {
			used = append(used, u)
		}
		image, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(image) != len(content) {
			t.Fatalf("the image is %d bytes, was %d", len(image), len(content))
		}
		checkRingReqs(t, drv, reqs, used, image)
		copy(content, image)
	})
}

// checkRingReqs checks FuzzRingQueue's invariants once the disk is reset.
func checkRingReqs(t *testing.T, drv *virtiotest.Driver, reqs []ringReq, used []virtiotest.Used, image []byte) {
	byHead := map[uint32]*ringReq{}
	for i := range reqs {
		byHead[uint32(reqs[i].head)] = &reqs[i]
	}
	for _, u := range used {
		r, ok := byHead[u.ID]
		if !ok {
			t.Fatalf("used head %d was not offered, or was used twice", u.ID)
		}
		delete(byHead, u.ID)
		if r.status.Len == 0 {
			t.Fatalf("a chain with no writable byte was used (head %d)", u.ID)
		}
		st := drv.Bytes(r.status)[0]
		if st != statusOK && st != statusIOErr && st != statusUnsupp {
			t.Fatalf("head %d: status byte %#x, not written", u.ID, st)
		}
		if st == statusOK && r.plain && !r.cut && (r.kind == typeIn || r.kind == typeOut) && r.n > 0 && !overlapsOtherWrite(reqs, r) {
			checkTransfer(t, drv, r, image)
		}
	}
	if drv.Notifier().Err() != nil {
		// A broken queue may have written a status it could not push.
		return
	}
	for _, r := range byHead {
		for _, b := range r.writable {
			if !bytes.Equal(drv.Bytes(b), bytes.Repeat([]byte{0xff}, int(b.Len))) {
				t.Fatalf("head %d was not used but written into", r.head)
			}
		}
	}
}

func checkTransfer(t *testing.T, drv *virtiotest.Driver, r *ringReq, image []byte) {
	if r.off+r.n > int64(len(image)) {
		t.Fatalf("a transfer of [%d, +%d) past the image's %d bytes succeeded", r.off, r.n, len(image))
	}
	want := image[r.off : r.off+r.n]
	if r.kind == typeOut {
		if !bytes.Equal(r.out, want) {
			t.Fatalf("an accepted write of [%d, +%d) is not in the image", r.off, r.n)
		}
		return
	}
	var got []byte
	for _, b := range r.data {
		got = append(got, drv.Bytes(b)...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("an accepted read of [%d, +%d) returned other bytes than the image's", r.off, r.n)
	}
}

// overlapsOtherWrite reports whether a write of reqs other than r may have
// changed r's range: then the order decides what r saw or left.
func overlapsOtherWrite(reqs []ringReq, r *ringReq) bool {
	for i := range reqs {
		o := &reqs[i]
		if o == r {
			continue
		}
		if o.wholeImage || (o.kind == typeOut && o.off < r.off+r.n && r.off < o.off+o.n) {
			return true
		}
	}
	return false
}
