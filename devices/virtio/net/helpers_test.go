package net

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/net/tap"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// fakeTap is a backend in memory: packets sent on rx are read by the device,
// frames the device writes arrive on tx.
type fakeTap struct {
	rx chan []byte
	tx chan []byte

	mu       sync.Mutex
	stop     chan struct{} // closed while the deadline is in the past
	offload  tap.Offload
	writeErr error
	closed   bool
}

func newFakeTap() *fakeTap {
	return &fakeTap{rx: make(chan []byte, 16), tx: make(chan []byte, 64), stop: make(chan struct{})}
}

func (f *fakeTap) Read(p []byte) (int, error) {
	f.mu.Lock()
	stop := f.stop
	f.mu.Unlock()
	select {
	case pkt := <-f.rx:
		return copy(p, pkt), nil
	case <-stop:
		return 0, os.ErrDeadlineExceeded
	}
}

func (f *fakeTap) ReadNow(p []byte) (int, error) {
	select {
	case pkt := <-f.rx:
		return copy(p, pkt), nil
	default:
		return 0, tap.ErrNoFrame
	}
}

func (f *fakeTap) Writev(iov [][]byte) (int, error) {
	f.mu.Lock()
	err := f.writeErr
	f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	frame := bytes.Join(iov, nil)
	f.tx <- frame
	return len(frame), nil
}

func (f *fakeTap) SetOffload(o tap.Offload) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offload = o
	return nil
}

func (f *fakeTap) SetDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.stop:
		if t.IsZero() {
			f.stop = make(chan struct{})
		}
	default:
		if !t.IsZero() {
			close(f.stop) // the device only ever sets a deadline in the past
		}
	}
	return nil
}

func (f *fakeTap) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeTap) Offload() tap.Offload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.offload
}

// sent waits for the next frame the device wrote to the tap.
func (f *fakeTap) sent(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-f.tx:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no frame written to the tap after 5s")
		return nil
	}
}

// bench is a device on a fake tap with a mock driver for each queue.
type bench struct {
	t      *testing.T
	mem    *memory.RAM
	tap    *fakeTap
	dev    *Device
	rx, tx *virtiotest.Driver
	next   memory.GuestAddress // where the next pair of queues goes
}

const queueArea = memory.MiB

var testMAC = []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

func newBench(t *testing.T) *bench {
	t.Helper()
	mem := virtiotest.NewRAM(t, 8*memory.MiB)
	b := &bench{t: t, mem: mem, tap: newFakeTap()}
	b.dev = newDevice(b.tap, "fake0", testMAC)
	b.newQueues()
	t.Cleanup(b.dev.Reset)
	return b
}

// newQueues lays out fresh rings, as a driver does after a reset.
func (b *bench) newQueues() {
	if b.next+2*queueArea > memory.GuestAddress(b.mem.Size()) {
		b.t.Fatal("bench: out of guest memory for queues")
	}
	b.rx = virtiotest.NewDriver(b.t, b.mem, b.next, queueSize, queueArea-64*memory.KiB)
	b.tx = virtiotest.NewDriver(b.t, b.mem, b.next+queueArea, queueSize, queueArea-64*memory.KiB)
	b.next += 2 * queueArea
}

func (b *bench) activate(features uint64) {
	b.t.Helper()
	features |= virtio.FeatureVersion1
	a := virtio.Activation{Mem: b.mem, Features: features,
		Queues: []*virtio.Queue{b.rx.Queue(features), b.tx.Queue(features)}}
	if err := b.dev.Activate(a); err != nil {
		b.t.Fatal(err)
	}
}

// packet is a header with the given flags and a frame of n patterned bytes.
func packet(flags byte, n int) []byte {
	p := make([]byte, hdrLen+n)
	p[hdrFlags] = flags
	for i := range n {
		p[hdrLen+i] = byte(i*7 + 1)
	}
	return p
}
