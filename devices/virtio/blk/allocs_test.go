package blk

import (
	"bytes"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// allocPages is how many 4 KiB pages each read and write moves; Linux sends
// them as separate descriptors, which is what these tests do.
const allocPages = 4

// linuxRequests places a read, a write and a flush the way Linux's
// virtio_blk lays them out: header, one descriptor per page, status byte.
func linuxRequests(drv *virtiotest.Driver, write []byte) (read, wr, flush virtiotest.Chain) {
	pages := make([]uint32, allocPages)
	for i := range pages {
		pages[i] = 4096
	}
	read = drv.AddChain([][]byte{header(typeIn, 8)}, append(pages, 1))
	var out [][]byte
	for i := range allocPages {
		out = append(out, write[i*4096:(i+1)*4096])
	}
	wr = drv.AddChain(append([][]byte{header(typeOut, 64)}, out...), []uint32{1})
	flush = drv.AddChain([][]byte{header(typeFlush, 0)}, []uint32{1})
	return read, wr, flush
}

// Parsing a request allocates nothing: a read, a write or a flush as Linux
// frames them, the framings that make parse list buffers of its own (data
// sharing a buffer with the header or with the status byte), and a discard.
func TestParseAllocatesNothing(t *testing.T) {
	mem := virtiotest.NewRAM(t, 16*memory.MiB)
	drv := virtiotest.NewDriver(t, mem, memory.MiB, queueSize, 8*memory.MiB)
	q := drv.Queue(virtio.FeatureVersion1)
	lim := limits{sectors: 1 << 20, discard: true, maxSegments: maxSegments, maxSegSector: maxSegSectors}
	page := pattern(4096, 1)
	read, wr, flush := linuxRequests(drv, pattern(allocPages*4096, 1))
	for _, tc := range []struct {
		name         string
		sent         virtiotest.Chain
		kind         uint32
		data, ranges int
	}{
		{"read", read, typeIn, allocPages, 0},
		{"write", wr, typeOut, allocPages, 0},
		{"flush", flush, typeFlush, 0, 0},
		{"read with the status after the data", drv.AddChain([][]byte{header(typeIn, 8)}, []uint32{4096 + 1}), typeIn, 1, 0},
		{"write with the header before the data", drv.AddChain([][]byte{append(header(typeOut, 8), page...)}, []uint32{1}), typeOut, 1, 0},
		{"discard", drv.AddChain([][]byte{header(typeDiscard, 0), segment(0, 8, 0), segment(64, 8, 0)}, []uint32{1}), typeDiscard, 0, 2},
	} {
		c, ok, err := q.Pop()
		if !ok || err != nil || c.Head != tc.sent.Head {
			t.Fatalf("%s: Pop() = %+v, %v, %v; want head %d", tc.name, c, ok, err, tc.sent.Head)
		}
		var room parseRoom
		virtiotest.NoAllocs(t, "parse "+tc.name, func() {
			req, err := parse(mem, c, lim, &room)
			if err != nil || req.kind != tc.kind || req.result != statusOK || len(req.data) != tc.data || len(req.ranges) != tc.ranges {
				t.Fatalf("parse %s = %+v, %v; want kind %d, OK, %d data buffers and %d ranges",
					tc.name, req, err, tc.kind, tc.data, tc.ranges)
			}
			if length(req.data) != uint64(tc.data)*4096 {
				t.Fatalf("parse %s: %d data bytes; want %d pages", tc.name, length(req.data), tc.data)
			}
		})
	}
}

// A request served by a running device allocates nothing, whichever way it
// reaches the image: the worker or io_uring's submitter and completer wait
// for the kick, take the chain, parse it, move the data between guest memory
// and the image, write the status and interrupt the driver.
func TestRequestAllocatesNothing(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		image := pattern(256*SectorSize, 7)
		d := openDisk(t, Options{IO: mode, Path: newImage(t, image)})
		r := startWith(t, d, 1, virtio.FeatureRingEventIdx)
		drv := r.drvs[0]
		data := pattern(allocPages*4096, 3)
		read, wr, flush := linuxRequests(drv, data)
		drv.Kick()
		for range 3 {
			drv.WaitUsed()
		}
		for _, tc := range []struct {
			name string
			sent virtiotest.Chain
			used uint32
			data []byte // what the read finds in its pages
		}{
			{"read", read, allocPages*4096 + 1, image[8*SectorSize : 8*SectorSize+allocPages*4096]},
			{"write", wr, 1, nil},
			{"flush", flush, 1, nil},
		} {
			virtiotest.NoAllocs(t, tc.name+" request", func() {
				drv.WantInterrupt()
				drv.Publish(tc.sent.Head)
				drv.KickIfAsked()
				u := drv.WaitUsed()
				if u.ID != uint32(tc.sent.Head) || u.Len != tc.used {
					t.Fatalf("%s: used %+v; want head %d and %d bytes", tc.name, u, tc.sent.Head, tc.used)
				}
				if st := statusOf(t, r.mem, tc.sent); st != statusOK {
					t.Fatalf("%s: status %d; want OK", tc.name, st)
				}
				for i, b := range tc.sent.Writable[:len(tc.data)/4096] {
					if !bytes.Equal(guest(t, r.mem, b), tc.data[i*4096:(i+1)*4096]) {
						t.Fatalf("%s: page %d differs from the image", tc.name, i)
					}
				}
			})
		}
		got := make([]byte, len(data))
		if _, err := d.file.ReadAt(got, 64*SectorSize); err != nil || !bytes.Equal(got, data) {
			t.Errorf("the image does not hold the written pages (%v)", err)
		}
	})
}

// statusOf reads the status byte at the end of c without allocating.
func statusOf(t *testing.T, mem *memory.RAM, c virtiotest.Chain) byte {
	last := c.Writable[len(c.Writable)-1]
	return guest(t, mem, last)[last.Len-1]
}

// guest is the guest memory behind b.
func guest(t *testing.T, mem *memory.RAM, b virtio.Buffer) []byte {
	s, err := mem.Slice(b.Addr, uint64(b.Len))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
