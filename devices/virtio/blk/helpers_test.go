package blk

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

func header(kind uint32, sector uint64) []byte {
	h := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(h[0:], kind)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

func segment(sector uint64, num, flags uint32) []byte {
	s := make([]byte, segmentSize)
	binary.LittleEndian.PutUint64(s[0:], sector)
	binary.LittleEndian.PutUint32(s[8:], num)
	binary.LittleEndian.PutUint32(s[12:], flags)
	return s
}

// pattern is n bytes that differ per sector and per byte.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i/SectorSize)*7 + byte(i) + seed
	}
	return p
}

// newImage writes content to a fresh image file in t.TempDir.
func newImage(t testing.TB, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func openDisk(t testing.TB, opts Options) *Device {
	t.Helper()
	d, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Reset()
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// rig is an activated disk with a mock driver on each queue.
type rig struct {
	t    testing.TB
	dev  *Device
	mem  *memory.RAM
	drvs []*virtiotest.Driver
}

// start activates d with nq queues and every offered feature accepted.
func start(t testing.TB, d *Device, nq int) *rig {
	t.Helper()
	return startWith(t, d, nq, 0)
}

// startWith is start with the transport's ring features as well (the
// virtio.FeatureRing* bits).
func startWith(t testing.TB, d *Device, nq int, ring uint64) *rig {
	t.Helper()
	features := d.Features() | virtio.FeatureVersion1 | ring
	r := &rig{t: t, dev: d, mem: virtiotest.NewRAM(t, 64*memory.MiB)}
	queues := make([]*virtio.Queue, NumQueues)
	for i := range nq {
		drv := virtiotest.NewDriver(t, r.mem, memory.GuestAddress(uint64(i)*16*memory.MiB+memory.MiB), queueSize, 8*memory.MiB)
		r.drvs = append(r.drvs, drv)
		queues[i] = drv.Queue(features)
	}
	err := d.Activate(virtio.Activation{Mem: r.mem, Features: features, Queues: queues})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Reset)
	return r
}

// do sends one request on queue 0 and waits for it to be used.
func (r *rig) do(readable [][]byte, writable []uint32) (virtiotest.Chain, virtiotest.Used) {
	return r.doOn(0, readable, writable)
}

func (r *rig) doOn(q int, readable [][]byte, writable []uint32) (virtiotest.Chain, virtiotest.Used) {
	r.t.Helper()
	drv := r.drvs[q]
	c := drv.AddChain(readable, writable)
	drv.Kick()
	u := drv.WaitUsed()
	if u.ID != uint32(c.Head) {
		r.t.Fatalf("used id %d, want head %d", u.ID, c.Head)
	}
	return c, u
}

// status is the status byte the device wrote at the end of c.
func (r *rig) status(c virtiotest.Chain) byte {
	last := c.Writable[len(c.Writable)-1]
	b := r.drvs[0].Bytes(last)
	return b[len(b)-1]
}

// eachPath runs f with each way requests reach the image.
func eachPath(t *testing.T, f func(t *testing.T, mode IOMode)) {
	for _, mode := range []IOMode{IOUring, IOBlocking, IOInline} {
		t.Run(mode.String(), func(t *testing.T) { f(t, mode) })
	}
}
