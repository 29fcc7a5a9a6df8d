package net

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// reuseTap is fakeTap with a Writev that allocates nothing itself: it keeps
// the last frame in room reused from frame to frame and sends its length.
type reuseTap struct {
	*fakeTap
	frame []byte
	sent  chan int
}

func (r *reuseTap) Writev(iov [][]byte) (int, error) {
	r.frame = r.frame[:0]
	for _, b := range iov {
		r.frame = append(r.frame, b...)
	}
	r.sent <- len(r.frame)
	return len(r.frame), nil
}

// allocRig is a running device on a reuseTap, with the features Linux
// negotiates for it.
func allocRig(t *testing.T) (tp *reuseTap, mem *memory.RAM, rx, tx *virtiotest.Driver) {
	mem = virtiotest.NewRAM(t, 4*memory.MiB)
	tp = &reuseTap{fakeTap: newFakeTap(), frame: make([]byte, 0, maxPacket), sent: make(chan int, 4)}
	dev := newDevice(tp, "fake0", testMAC)
	rx = virtiotest.NewDriver(t, mem, 0, queueSize, queueArea-64*memory.KiB)
	tx = virtiotest.NewDriver(t, mem, queueArea, queueSize, queueArea-64*memory.KiB)
	features := dev.Features() | virtio.FeatureVersion1 | virtio.FeatureRingEventIdx
	a := virtio.Activation{Mem: mem, Features: features, Queues: []*virtio.Queue{rx.Queue(features), tx.Queue(features)}}
	if err := dev.Activate(a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Reset)
	return tp, mem, rx, tx
}

// A frame the guest sends goes to the tap without an allocation: the
// transmitter wakes on the kick, takes the chain, writes header and frame to
// the tap in one writev, returns the chain and interrupts the driver. Three
// frames at once make it linger, looking at the ring without kicks.
func TestTransmitAllocatesNothing(t *testing.T) {
	for _, frames := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d frames a kick", frames), func(t *testing.T) {
			tp, _, _, tx := allocRig(t)
			pkts := make([][]byte, frames)
			sent := make([]virtiotest.Chain, frames)
			for i := range pkts {
				pkts[i] = packet(0, 1500+i)
				sent[i] = tx.AddChain([][]byte{pkts[i][:hdrLen], pkts[i][hdrLen:]}, nil)
			}
			tx.Kick()
			for range frames {
				tx.WaitUsed()
				<-tp.sent
			}
			virtiotest.NoAllocs(t, "transmit", func() {
				for _, c := range sent {
					tx.Publish(c.Head)
				}
				tx.KickIfAsked()
				for i, c := range sent {
					tx.WantInterrupt()
					if u := tx.WaitUsed(); u.ID != uint32(c.Head) || u.Len != 0 {
						t.Fatalf("used %+v; want head %d, length 0", u, c.Head)
					}
					n := <-tp.sent
					// The transmitter may already be writing the next
					// frame over the last one.
					if n != len(pkts[i]) || frames == 1 && !bytes.Equal(tp.frame, pkts[i]) {
						t.Fatalf("tap got %d bytes; want the %d-byte header and frame unchanged", n, len(pkts[i]))
					}
				}
			})
		})
	}
}

// A frame the tap delivers reaches the guest without an allocation, here
// spread over two mergeable receive buffers: the receiver reads the tap,
// takes and holds the chains, copies the packet in, fills num_buffers,
// returns the chains and interrupts the driver.
func TestReceiveAllocatesNothing(t *testing.T) {
	tp, mem, rx, _ := allocRig(t)
	pkt := packet(0, 1500)
	var chains [2]virtiotest.Chain
	for i := range chains {
		chains[i] = rx.AddChain(nil, []uint32{1024})
	}
	virtiotest.NoAllocs(t, "receive", func() {
		rx.WantInterrupt()
		tp.rx <- pkt
		rx.KickIfAsked()
		off := 0
		for i, want := range []int{1024, len(pkt) - 1024} {
			c := chains[i]
			if u := rx.WaitUsed(); u.ID != uint32(c.Head) || u.Len != uint32(want) {
				t.Fatalf("used element %d: %+v; want head %d, %d bytes", i, u, c.Head, want)
			}
			got, err := mem.Slice(c.Writable[0].Addr, uint64(want))
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if n := binary.LittleEndian.Uint16(got[hdrNumBuffers:]); n != 2 {
					t.Fatalf("num_buffers %d; want 2", n)
				}
				off = hdrLen
				got = got[hdrLen:]
			}
			if !bytes.Equal(got, pkt[off:off+len(got)]) {
				t.Fatalf("chain %d: the frame differs from what the tap delivered", i)
			}
			off += len(got)
		}
		// The guest hands the buffers back for the next packet.
		for _, c := range chains {
			rx.Publish(c.Head)
		}
	})
}
