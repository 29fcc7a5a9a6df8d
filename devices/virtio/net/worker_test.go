package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
)

func TestTransmitGathersHeaderAndFrame(t *testing.T) {
	b := newBench(t)
	b.activate(virtio.FeatureRingEventIdx | featureCsum)
	pkt := packet(flagNeedsCsum, 1400)
	c := b.tx.AddChain([][]byte{pkt[:hdrLen], pkt[hdrLen:100], pkt[100:]}, nil)
	b.tx.Kick()
	if u := b.tx.WaitUsed(); u.ID != uint32(c.Head) || u.Len != 0 {
		t.Fatalf("used %+v; want head %d, length 0", u, c.Head)
	}
	if got := b.tap.sent(t); !bytes.Equal(got, pkt) {
		t.Fatalf("tap got %d bytes; want the %d-byte header and frame unchanged", len(got), len(pkt))
	}
	if b.tx.Notifier().Interrupts() == 0 {
		t.Error("no interrupt after the transmit completed")
	}
}

func TestTransmitDrainsBeforeTheFirstKick(t *testing.T) {
	b := newBench(t)
	pkt := packet(0, 60)
	b.tx.AddChain([][]byte{pkt}, nil)
	b.activate(0)
	if got := b.tap.sent(t); !bytes.Equal(got, pkt) {
		t.Fatal("frame queued before activation was not sent as is")
	}
}

// A guest that adds frames while earlier ones are sent needs fewer kicks
// than frames: the transmitter keeps looking at the ring for a while.
func TestTransmitStreamTakesFewerKicksThanFrames(t *testing.T) {
	b := newBench(t)
	b.activate(virtio.FeatureRingEventIdx)
	const pairs = 40
	kicks := 0
	for i := range pairs {
		for j := range 2 {
			b.tx.AddChain([][]byte{packet(0, 60+2*i+j)}, nil)
		}
		if b.tx.KickIfAsked() {
			kicks++
		}
		for j := range 2 {
			// Spin: the mock driver leaves used_event at 0, so after the first
			// interrupt WaitUsed would sleep 10 ms, past any linger.
			deadline := time.Now().Add(5 * time.Second)
			for _, ok := b.tx.PollUsed(); !ok; _, ok = b.tx.PollUsed() {
				if time.Now().After(deadline) {
					t.Fatalf("pair %d: frame %d not used after 5s", i, j)
				}
				runtime.Gosched()
			}
			if got, want := len(b.tap.sent(t)), hdrLen+60+2*i+j; got != want {
				t.Fatalf("pair %d: tap got a %d-byte frame; want %d", i, got, want)
			}
		}
	}
	if kicks >= pairs/2 {
		t.Errorf("%d kicks for %d pairs of frames, each pair added as the last was sent; want fewer than half", kicks, pairs)
	}
}

// A driver that kicks only when avail_event asks must never leave a frame
// on the ring unsent, whenever it adds the frame: during a drain, during
// the linger or as the transmitter gives up lingering and asks for kicks.
func TestTransmitSendsEveryFrameOfADriverThatKicksOnlyWhenAsked(t *testing.T) {
	b := newBench(t)
	b.activate(virtio.FeatureRingEventIdx)
	const frames = 300
	got := make(chan int, frames)
	go func() {
		for range frames {
			select {
			case f := <-b.tap.tx:
				got <- len(f)
			case <-time.After(5 * time.Second):
				close(got)
				return
			}
		}
	}()
	gaps := []time.Duration{0, 0, 10 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 400 * time.Microsecond, time.Millisecond}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range frames {
		b.tx.AddChain([][]byte{packet(0, 60+i%200)}, nil)
		b.tx.KickIfAsked()
		if g := gaps[rng.IntN(len(gaps))]; g > 0 {
			time.Sleep(g)
		}
		for {
			if _, ok := b.tx.PollUsed(); !ok {
				break
			}
		}
	}
	for i := range frames {
		n, ok := <-got
		if !ok {
			t.Fatalf("frame %d of %d was never sent, 5s after the previous one", i, frames)
		}
		if want := hdrLen + 60 + i%200; n != want {
			t.Fatalf("frame %d: %d bytes; want %d", i, n, want)
		}
	}
}

func TestTransmitDropsFramesNoTapWouldTake(t *testing.T) {
	b := newBench(t)
	b.activate(0)
	b.tx.AddChain([][]byte{packet(0, minFrame-1)}, nil)
	b.tx.AddChain([][]byte{packet(0, maxFrame/2), packet(0, maxFrame/2)}, nil) // 12 bytes too many
	good := packet(0, 64)
	b.tx.AddChain([][]byte{good}, nil)
	b.tx.Kick()
	for range 3 {
		if u := b.tx.WaitUsed(); u.Len != 0 {
			t.Fatalf("used %+v; want length 0", u)
		}
	}
	if got := b.tap.sent(t); !bytes.Equal(got, good) {
		t.Fatalf("tap got a %d-byte frame first; want only the good %d-byte one", len(got), len(good))
	}
	if err := b.tx.Notifier().Err(); err != nil {
		t.Fatalf("dropping frames broke the queue: %v", err)
	}
}

// A frame whose header asks for an offload the driver did not negotiate
// never reaches the tap; it is counted in the queue's statistics, and the
// queue goes on.
func TestTransmitDropsAndCountsOffloadsNotNegotiated(t *testing.T) {
	b := newBench(t)
	features := uint64(virtio.FeatureVersion1 | featureCsum) // no TSO
	var counts [2]virtio.QueueCounters
	qs := []*virtio.Queue{b.rx.Queue(features), b.tx.Queue(features)}
	for i, q := range qs {
		q.CountInto(&counts[i])
	}
	if err := b.dev.Activate(virtio.Activation{Mem: b.mem, Features: features, Queues: qs}); err != nil {
		t.Fatal(err)
	}
	tso := packet(flagNeedsCsum, 1400)
	tso[hdrGSOType] = gsoTCPv4
	binary.LittleEndian.PutUint16(tso[hdrGSOSize:], 1448)
	b.tx.AddChain([][]byte{tso}, nil)
	good := packet(0, 64)
	b.tx.AddChain([][]byte{good}, nil)
	b.tx.Kick()
	for range 2 {
		b.tx.WaitUsed()
	}
	if got := b.tap.sent(t); !bytes.Equal(got, good) {
		t.Fatalf("tap got a %d-byte frame first; want only the %d-byte one without offloads", len(got), len(good))
	}
	if n := counts[txQueue].Dropped.Load(); n != 1 {
		t.Errorf("transmit queue counted %d dropped; want 1", n)
	}
	if err := b.tx.Notifier().Err(); err != nil {
		t.Fatalf("a refused header broke the queue: %v", err)
	}
}

func TestTransmitSurvivesTapErrors(t *testing.T) {
	b := newBench(t)
	b.tap.writeErr = unix.EINVAL
	b.activate(0)
	b.tx.AddChain([][]byte{packet(0, 60)}, nil)
	b.tx.Kick()
	b.tx.WaitUsed()
	b.tap.mu.Lock()
	b.tap.writeErr = nil
	b.tap.mu.Unlock()
	good := packet(0, 70)
	b.tx.AddChain([][]byte{good}, nil)
	b.tx.Kick()
	b.tx.WaitUsed()
	if got := b.tap.sent(t); !bytes.Equal(got, good) {
		t.Fatal("frame after a tap error not sent")
	}
}

func TestTransmitBreaksOnMalformedChains(t *testing.T) {
	for name, add := range map[string]func(b *bench){
		"writable buffer": func(b *bench) { b.tx.AddChain([][]byte{packet(0, 60)}, []uint32{16}) },
		"short header":    func(b *bench) { b.tx.AddChain([][]byte{make([]byte, hdrLen-1)}, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			b := newBench(t)
			b.activate(0)
			add(b)
			b.tx.Kick()
			if err := b.tx.Notifier().WaitBroken(t); !errors.Is(err, virtio.ErrBroken) {
				t.Fatalf("Broken(%v); want ErrBroken", err)
			}
			select {
			case <-b.tap.tx:
				t.Fatal("a malformed chain reached the tap")
			default:
			}
		})
	}
}

func numBuffers(hdr []byte) uint16 { return binary.LittleEndian.Uint16(hdr[hdrNumBuffers:]) }

func TestReceiveIntoOneChain(t *testing.T) {
	for _, tc := range []struct {
		features  uint64
		wantFlags byte
	}{
		{0, 0}, // §5.1.6.4.1: flags are zero without GUEST_CSUM
		{featureGuestCsum, 2},
	} {
		b := newBench(t)
		b.activate(tc.features)
		pkt := packet(2, 1000) // VIRTIO_NET_HDR_F_DATA_VALID
		c := b.rx.AddChain(nil, []uint32{hdrLen, 1514})
		b.rx.Kick()
		b.tap.rx <- bytes.Clone(pkt)
		u := b.rx.WaitUsed()
		if u.ID != uint32(c.Head) || u.Len != uint32(len(pkt)) {
			t.Fatalf("used %+v; want head %d, %d bytes", u, c.Head, len(pkt))
		}
		got := append(b.rx.Bytes(c.Writable[0]), b.rx.Bytes(c.Writable[1])...)[:len(pkt)]
		if got[hdrFlags] != tc.wantFlags || numBuffers(got) != 1 || !bytes.Equal(got[hdrLen:], pkt[hdrLen:]) {
			t.Fatalf("features %#x: header % x; want flags %d, num_buffers 1, and the frame intact", tc.features, got[:hdrLen], tc.wantFlags)
		}
	}
}

func TestReceiveMergeableSpansChains(t *testing.T) {
	b := newBench(t)
	b.activate(featureMrgRxbuf | virtio.FeatureRingEventIdx)
	var chains []virtiotest.Chain
	for range 4 {
		chains = append(chains, b.rx.AddChain(nil, []uint32{700, 800}))
	}
	b.rx.Kick()
	pkt := packet(0, 3000)
	b.tap.rx <- bytes.Clone(pkt)
	var got []byte
	for i, want := range []uint32{1500, 1500, hdrLen} {
		c := chains[i]
		if u := b.rx.WaitUsed(); u.ID != uint32(c.Head) || u.Len != want {
			t.Fatalf("used element %d: %+v; want head %d, %d bytes", i, u, c.Head, want)
		}
		got = append(got, append(b.rx.Bytes(c.Writable[0]), b.rx.Bytes(c.Writable[1])...)[:want]...)
	}
	b.rx.ExpectNoUsed(20 * time.Millisecond)
	if numBuffers(got) != 3 || !bytes.Equal(got[hdrLen:], pkt[hdrLen:]) {
		t.Fatalf("num_buffers %d; want 3 and the frame intact across the chains", numBuffers(got))
	}
}

func TestReceiveWaitsForBuffers(t *testing.T) {
	b := newBench(t)
	b.activate(featureMrgRxbuf | virtio.FeatureRingEventIdx)
	pkt := packet(0, 2000)
	b.tap.rx <- bytes.Clone(pkt)
	c1 := b.rx.AddChain(nil, []uint32{1500}) // not enough on its own
	b.rx.Kick()
	b.rx.ExpectNoUsed(50 * time.Millisecond)
	c2 := b.rx.AddChain(nil, []uint32{1500})
	b.rx.Kick()
	for _, want := range []struct {
		head uint16
		len  uint32
	}{{c1.Head, 1500}, {c2.Head, uint32(len(pkt)) - 1500}} {
		if u := b.rx.WaitUsed(); u.ID != uint32(want.head) || u.Len != want.len {
			t.Fatalf("used %+v; want head %d, %d bytes", u, want.head, want.len)
		}
	}
}

func TestReceiveDropsWhatOneChainCannotHold(t *testing.T) {
	b := newBench(t)
	b.activate(0) // no mergeable buffers
	c := b.rx.AddChain(nil, []uint32{200})
	b.rx.Kick()
	b.tap.rx <- packet(0, 500)
	b.rx.ExpectNoUsed(50 * time.Millisecond)
	small := packet(0, 100)
	b.tap.rx <- bytes.Clone(small)
	if u := b.rx.WaitUsed(); u.ID != uint32(c.Head) || u.Len != uint32(len(small)) {
		t.Fatalf("used %+v; want the kept chain %d with %d bytes", u, c.Head, len(small))
	}
	if got := b.rx.Bytes(c.Writable[0])[:len(small)]; !bytes.Equal(got[hdrLen:], small[hdrLen:]) {
		t.Fatal("frame after a dropped one is corrupted")
	}
}

func TestReceiveBreaksOnChainsWithoutRoomForTheHeader(t *testing.T) {
	for name, add := range map[string]func(b *bench){
		"tiny":          func(b *bench) { b.rx.AddChain(nil, []uint32{hdrLen - 1}) },
		"readable only": func(b *bench) { b.rx.AddChain([][]byte{make([]byte, 100)}, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			b := newBench(t)
			b.activate(featureMrgRxbuf)
			add(b)
			b.rx.Kick()
			b.tap.rx <- packet(0, 60)
			if err := b.rx.Notifier().WaitBroken(t); !errors.Is(err, virtio.ErrBroken) {
				t.Fatalf("Broken(%v); want ErrBroken", err)
			}
		})
	}
}

func TestReceiveLargestPacketAndDropsLonger(t *testing.T) {
	b := newBench(t)
	b.activate(featureMrgRxbuf)
	var chains []virtiotest.Chain
	for range 17 { // 17 × 4096 ≥ 65562
		chains = append(chains, b.rx.AddChain(nil, []uint32{4096}))
	}
	b.rx.Kick()
	b.tap.rx <- packet(0, maxFrame+1) // cut short by the tap: dropped
	pkt := packet(0, maxFrame)
	b.tap.rx <- bytes.Clone(pkt)
	var got []byte
	for i, c := range chains {
		u := b.rx.WaitUsed()
		want := min(4096, len(pkt)-len(got))
		if u.ID != uint32(c.Head) || u.Len != uint32(want) {
			t.Fatalf("used element %d: %+v; want head %d, %d bytes", i, u, c.Head, want)
		}
		got = append(got, b.rx.Bytes(c.Writable[0])[:want]...)
	}
	if numBuffers(got) != 17 || !bytes.Equal(got[hdrLen:], pkt[hdrLen:]) {
		t.Fatalf("num_buffers %d; want 17 and the frame intact", numBuffers(got))
	}
}

// Packets already queued on the tap are delivered together, with one
// interrupt for the batch rather than one each.
func TestReceiveInterruptsOncePerBatch(t *testing.T) {
	b := newBench(t)
	const n = 8
	for i := range n {
		b.tap.rx <- packet(0, 100+i)
	}
	var chains []virtiotest.Chain
	for range n {
		chains = append(chains, b.rx.AddChain(nil, []uint32{hdrLen + 1514}))
	}
	b.activate(0)
	b.rx.Kick()
	for i := range n {
		if u := b.rx.WaitUsed(); u.ID != uint32(chains[i].Head) || u.Len != uint32(hdrLen+100+i) {
			t.Fatalf("used %+v; want head %d, %d bytes", u, chains[i].Head, hdrLen+100+i)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for b.rx.Notifier().Interrupts() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if got := b.rx.Notifier().Interrupts(); got != 1 {
		t.Errorf("%d packets queued on the tap raised %d interrupts, want 1", n, got)
	}
}
