package virtio_test

import (
	"slices"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// The queue's share of every request allocates nothing once it has served a
// chain of the same shape: taking the chain from the available ring, walking
// its descriptors, returning it on the used ring and deciding whether the
// driver wants an interrupt. The chain is a block write as Linux sends it:
// header, four pages, status byte, in the ring or through an indirect table.
func TestQueueRequestAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features uint64
	}{
		{"no features", 0},
		{"event idx", virtio.FeatureRingEventIdx},
		{"indirect", virtio.FeatureRingEventIdx | virtio.FeatureRingIndirectDesc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := virtiotest.NewRAM(t, 4*memory.MiB)
			drv := virtiotest.NewDriver(t, mem, memory.MiB, 256, memory.MiB)
			q := drv.Queue(tc.features)
			page := make([]byte, 4096)
			add := drv.AddChain
			if tc.features&virtio.FeatureRingIndirectDesc != 0 {
				add = drv.AddIndirectChain
			}
			sent := add([][]byte{make([]byte, 16), page, page, page, page}, []uint32{1})
			if _, ok, err := q.Pop(); !ok || err != nil {
				t.Fatalf("Pop() = %v, %v; want the chain", ok, err)
			}
			interrupts := drv.Notifier().Interrupts()
			virtiotest.NoAllocs(t, "pop, push and notify", func() {
				drv.WantInterrupt()
				drv.Publish(sent.Head)
				c, ok, err := q.Pop()
				if !ok || err != nil || c.Head != sent.Head || len(c.Readable) != 5 || len(c.Writable) != 1 {
					t.Fatalf("Pop() = %+v, %v, %v; want head %d with 5 readable and 1 writable buffers", c, ok, err, sent.Head)
				}
				if err := q.Push(c.Head, 1); err != nil {
					t.Fatal(err)
				}
				q.Notify()
				if u, ok := drv.PollUsed(); !ok || u.ID != uint32(sent.Head) || u.Len != 1 {
					t.Fatalf("used %+v, %v; want head %d with 1 byte", u, ok, sent.Head)
				}
				// Looking again finds nothing; with EVENT_IDX it also asks
				// for the next kick.
				if _, ok, err := q.Pop(); ok || err != nil {
					t.Fatalf("second Pop() = %v, %v; want nothing", ok, err)
				}
				interrupts++
				if got := drv.Notifier().Interrupts(); got != interrupts {
					t.Fatalf("%d interrupts; want %d, one per request", got, interrupts)
				}
			})
		})
	}
}

// The transport's share of an interrupt allocates nothing either: with
// MSI-X set up as Linux's driver does, a queue's Notify signals its vector.
func TestQueueInterruptAllocatesNothing(t *testing.T) {
	g := newGuest(t, newFakeDev(), guestOpts{})
	g.probe(virtio.FeatureVersion1)
	vq := g.dev.last(t).Queues[0]
	g.msi.signals = make([]int, 0, 128) // room for every signal: the fake allocates nothing
	virtiotest.NoAllocs(t, "push and interrupt", func() {
		if err := vq.Push(0, 0); err != nil {
			t.Fatal(err)
		}
		vq.Notify()
	})
	s := g.msi.takeSignals()
	if len(s) != 101 || slices.ContainsFunc(s, func(v int) bool { return v != 1 }) {
		t.Errorf("signals %v; want vector 1 for each of the 101 runs", s)
	}
}
