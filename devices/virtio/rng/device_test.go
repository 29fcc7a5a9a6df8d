package rng

import (
	"bytes"
	"testing"
	"time"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

func start(t *testing.T) (*Device, *virtiotest.Driver) {
	t.Helper()
	mem := virtiotest.NewRAM(t, 4*memory.MiB)
	drv := virtiotest.NewDriver(t, mem, memory.MiB, queueSize, 2*memory.MiB)
	d := New()
	if err := d.Activate(virtio.Activation{Mem: mem, Queues: []*virtio.Queue{drv.Queue(virtio.FeatureVersion1)}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Reset)
	return d, drv
}

func TestFillsWritableBuffers(t *testing.T) {
	_, drv := start(t)
	c := drv.AddChain(nil, []uint32{64, 32})
	drv.Kick()
	if u := drv.WaitUsed(); u.ID != uint32(c.Head) || u.Len != 96 {
		t.Fatalf("used %+v, want head %d and 96 bytes", u, c.Head)
	}
	a, b := drv.Bytes(c.Writable[0]), drv.Bytes(c.Writable[1])
	if bytes.Equal(a, make([]byte, 64)) || bytes.Equal(b, make([]byte, 32)) || bytes.Equal(a[:32], b) {
		t.Fatal("buffers were not filled with random bytes")
	}
}

func TestBoundsOneRequest(t *testing.T) {
	_, drv := start(t)
	c := drv.AddChain(nil, []uint32{maxFill - 10, 100})
	drv.Kick()
	if u := drv.WaitUsed(); u.Len != maxFill {
		t.Fatalf("used length %d, want %d", u.Len, maxFill)
	}
	if tail := drv.Bytes(c.Writable[1])[10:]; !bytes.Equal(tail, make([]byte, 90)) {
		t.Fatal("device wrote past the bytes it reported")
	}
}

func TestServesManyRequests(t *testing.T) {
	_, drv := start(t)
	for range 3 * queueSize {
		c := drv.AddChain(nil, []uint32{16})
		drv.Kick()
		if u := drv.WaitUsed(); u.ID != uint32(c.Head) || u.Len != 16 {
			t.Fatalf("used %+v", u)
		}
	}
}

func TestReadableBufferBreaksQueue(t *testing.T) {
	_, drv := start(t)
	drv.AddChain([][]byte{{1, 2, 3}}, []uint32{16})
	drv.Kick()
	drv.Notifier().WaitBroken(t)
	drv.ExpectNoUsed(20 * time.Millisecond)
}

func TestResetAndReactivate(t *testing.T) {
	d, drv := start(t)
	d.Reset()
	d.Reset()
	if err := d.Activate(virtio.Activation{Queues: []*virtio.Queue{nil}}); err == nil {
		t.Fatal("activated without a queue")
	}
	if err := d.Activate(virtio.Activation{Queues: []*virtio.Queue{drv.Queue(0)}}); err != nil {
		t.Fatal(err)
	}
	drv.AddChain(nil, []uint32{8})
	drv.Kick()
	drv.WaitUsed()
}

func TestConfigReadsZero(t *testing.T) {
	d := New()
	b := []byte{1, 2, 3, 4}
	d.ReadConfig(0, b)
	if !bytes.Equal(b, make([]byte, 4)) || d.Type() != virtio.TypeRNG || d.Features() != 0 {
		t.Fatalf("config %x type %d features %#x", b, d.Type(), d.Features())
	}
}
