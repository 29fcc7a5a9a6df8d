package virtio

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/memory"
)

func TestNewQueueChecksTheRings(t *testing.T) {
	mem := newTestRAM(t, 4*memory.MiB)
	kick := newTestKick(t)
	good := QueueConfig{Size: 256, Desc: 0x1000, Driver: 0x2000, Device: 0x3000}
	for _, tc := range []struct {
		name string
		edit func(*QueueConfig)
		want string
	}{
		{"size 0", func(c *QueueConfig) { c.Size = 0 }, "not a power of two"},
		{"size 3", func(c *QueueConfig) { c.Size = 3 }, "not a power of two"},
		{"size 65535", func(c *QueueConfig) { c.Size = 65535 }, "not a power of two"},
		{"descriptor table misaligned", func(c *QueueConfig) { c.Desc = 0x1008 }, "descriptor table at 0x1008 is not 16-byte aligned"},
		{"avail ring misaligned", func(c *QueueConfig) { c.Driver = 0x2001 }, "available ring) at 0x2001 is not 2-byte aligned"},
		{"used ring misaligned", func(c *QueueConfig) { c.Device = 0x3002 }, "used ring) at 0x3002 is not 4-byte aligned"},
		{"descriptor table outside RAM", func(c *QueueConfig) { c.Desc = 3 * memory.GiB }, "outside guest RAM"},
		{"avail ring past the end", func(c *QueueConfig) { c.Driver = 4*memory.MiB - 512 }, "outside guest RAM"},
		{"used ring past the end", func(c *QueueConfig) { c.Device = 4*memory.MiB - 2048 }, "outside guest RAM"},
		{"used ring wraps", func(c *QueueConfig) { c.Device = ^memory.GuestAddress(3) }, "outside guest RAM"},
	} {
		cfg := good
		tc.edit(&cfg)
		if q, err := NewQueue(mem, cfg, 0, kick, &fakeNotifier{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewQueue(%+v) = %v, %v; want an error saying %q", tc.name, cfg, q, err, tc.want)
		}
	}
	if _, err := NewQueue(mem, good, 0, nil, &fakeNotifier{}); err == nil {
		t.Error("NewQueue without a kick eventfd succeeded")
	}
	if _, err := NewQueue(mem, good, 0, kick, nil); err == nil {
		t.Error("NewQueue without a notifier succeeded")
	}
	for _, size := range []uint16{1, 2, MaxQueueSize} {
		cfg := QueueConfig{Size: size, Desc: 0x10000, Driver: 0x100000, Device: 0x200000}
		if _, err := NewQueue(mem, cfg, 0, kick, &fakeNotifier{}); err != nil {
			t.Errorf("size %d: %v", size, err)
		}
	}
}

func TestPopEmpty(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	if c, ok, err := tq.Pop(); ok || err != nil {
		t.Fatalf("Pop() on an empty queue = %+v, %v, %v", c, ok, err)
	}
}

func TestPopPushRoundTrip(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	head := tq.drv.add(readable("hello "), readable("world"), writable(4), writable(16))
	c := tq.mustPop(t)
	r := NewReader(tq.Mem(), c.Readable)
	got := make([]byte, c.ReadableLen())
	if _, err := r.Read(got); err != nil || string(got) != "hello world" {
		t.Fatalf("read %q, %v", got, err)
	}
	w := NewWriter(tq.Mem(), c.Writable)
	if _, err := w.Write([]byte("HELLO WORLD")); err != nil {
		t.Fatal(err)
	}
	if err := tq.Push(c.Head, w.Written()); err != nil {
		t.Fatal(err)
	}
	if u := tq.drv.used(); len(u) != 1 || u[0] != (usedElem{uint32(head), 11}) {
		t.Fatalf("used ring = %+v, want head %d with 11 bytes", u, head)
	}
	back := make([]byte, 11)
	if _, err := NewReader(tq.Mem(), c.Writable).Read(back); err != nil || string(back) != "HELLO WORLD" {
		t.Errorf("guest sees %q, %v", back, err)
	}
	if _, ok, err := tq.Pop(); ok || err != nil {
		t.Errorf("second Pop() = %v, %v; want empty", ok, err)
	}
}

// A device may hold chains while it pops more (the net receiver does): the
// copies AppendTo makes keep their buffers though the queue reuses its own
// lists for the next chain.
func TestHeldChainsKeepTheirBuffers(t *testing.T) {
	tq := newTestQueue(t, 16, 0)
	tq.drv.add(readable("a"), writable(2), writable(3))
	var room []Buffer
	first, room := tq.mustPop(t).AppendTo(room)
	want := slices.Clone(first.Writable)
	tq.drv.add(writable(7), writable(8), writable(9), writable(10))
	second, room := tq.mustPop(t).AppendTo(room)
	if !slices.Equal(first.Writable, want) || len(first.Readable) != 1 || first.Readable[0].Len != 1 {
		t.Fatalf("first chain changed to %+v after popping %+v", first, second)
	}
	if second.Head != 3 || len(second.Readable) != 0 || len(second.Writable) != 4 || second.Writable[3].Len != 10 {
		t.Fatalf("second chain = %+v, want four writable buffers at head 3", second)
	}
	if len(room) != 7 {
		t.Errorf("room holds %d buffers after keeping 3 and 4; want 7", len(room))
	}
	// Appending to one list must not write into the other.
	_ = append(first.Readable, Buffer{Len: 99})
	if first.Writable[0] != want[0] {
		t.Fatalf("appending to Readable overwrote Writable: %+v", first.Writable)
	}
}

// Chains come back in order while the ring slots and the free-running
// 16-bit indices wrap around.
func TestIndicesWrap(t *testing.T) {
	tq := newTestQueue(t, 4, 0)
	const start, end = 65530, 9 // end = (start + 15) % 65536
	tq.lastAvail, tq.used, tq.signalled = start, start, start
	tq.drv.availIdx, tq.drv.usedSeen = start, start
	tq.drv.setAvailIdx(start)
	for round := range 5 {
		var heads []uint16
		for range 3 {
			heads = append(heads, tq.drv.add(writable(1)))
		}
		for i := range heads {
			c := tq.mustPop(t)
			if c.Head != heads[i] {
				t.Fatalf("round %d: popped head %d, want %d", round, c.Head, heads[i])
			}
			if err := tq.Push(c.Head, uint32(i)); err != nil {
				t.Fatal(err)
			}
		}
		u := tq.drv.used()
		for i := range heads {
			if len(u) != len(heads) || u[i] != (usedElem{uint32(heads[i]), uint32(i)}) {
				t.Fatalf("round %d: used = %+v, want heads %v", round, u, heads)
			}
		}
	}
	if tq.used != end || tq.drv.usedIdx() != end {
		t.Errorf("used.idx = %d, want %d", tq.drv.usedIdx(), end)
	}
}

func checkBroken(t *testing.T, tq testQueue, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "0x1000") {
		t.Fatalf("error = %v, want ErrBroken naming the queue at 0x1000 and saying %q", err, want)
	}
	if _, broken := tq.n.counts(); broken != 1 {
		t.Fatalf("Broken called %d times, want once", broken)
	}
	if _, _, again := tq.Pop(); again == nil || again.Error() != err.Error() {
		t.Errorf("Pop after breaking = %v, want the same error", again)
	}
	if again := tq.Push(0, 0); again == nil || again.Error() != err.Error() {
		t.Errorf("Push after breaking = %v, want the same error", again)
	}
	tq.Notify()
	if irq, broken := tq.n.counts(); irq != 0 || broken != 1 {
		t.Errorf("after breaking: %d interrupts, Broken called %d times", irq, broken)
	}
}

func TestAvailIdxTooFarAheadBreaks(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	tq.drv.setAvailIdx(9)
	_, ok, err := tq.Pop()
	if ok {
		t.Fatal("Pop returned a chain")
	}
	checkBroken(t, tq, err, "avail.idx 9 is more than the queue size 8 ahead")
}

func TestBadChainBreaks(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	tq.drv.add(writable(4))
	tq.drv.publish(99)
	tq.mustPop(t)
	_, _, err := tq.Pop()
	checkBroken(t, tq, err, "avail ring entry 1: chain at head 99")
}

func TestIndirectNeedsTheFeature(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	tq.drv.addIndirect(writable(4))
	_, _, err := tq.Pop()
	checkBroken(t, tq, err, "VIRTIO_F_INDIRECT_DESC was not negotiated")
}

func TestFail(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	tq.drv.add(readable("x"))
	c := tq.mustPop(t)
	errBad := errors.New("request header too short")
	tq.Fail(errBad)
	tq.Fail(errors.New("second complaint"))
	tq.n.mu.Lock()
	first := tq.n.broken[0]
	tq.n.mu.Unlock()
	if !errors.Is(first, errBad) || !errors.Is(first, ErrBroken) {
		t.Errorf("Broken(%v), want it to wrap ErrBroken and the device's error", first)
	}
	if err := tq.Push(c.Head, 0); !errors.Is(err, errBad) {
		t.Errorf("Push after Fail = %v", err)
	}
	checkBroken(t, tq, first, "request header too short")
}

func TestPushChecksHead(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	if err := tq.Push(8, 0); err == nil || errors.Is(err, ErrBroken) {
		t.Errorf("Push(8) = %v, want an error that does not blame the driver", err)
	}
	if _, broken := tq.n.counts(); broken != 0 {
		t.Error("a device bug broke the queue")
	}
}

func pushOne(t *testing.T, tq testQueue) {
	t.Helper()
	tq.drv.add(writable(1))
	c := tq.mustPop(t)
	if err := tq.Push(c.Head, 1); err != nil {
		t.Fatal(err)
	}
}

func wantInterrupts(t *testing.T, tq testQueue, want int) {
	t.Helper()
	if got, _ := tq.n.counts(); got != want {
		t.Fatalf("%d interrupts, want %d", got, want)
	}
}

func TestNotifyHonoursNoInterrupt(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	tq.Notify()
	wantInterrupts(t, tq, 0) // nothing pushed yet
	pushOne(t, tq)
	tq.Notify()
	wantInterrupts(t, tq, 1)
	tq.Notify()
	wantInterrupts(t, tq, 1) // nothing new
	tq.drv.setAvailFlags(availFNoInterrupt)
	pushOne(t, tq)
	tq.Notify()
	wantInterrupts(t, tq, 1)
	tq.drv.setAvailFlags(0)
	pushOne(t, tq)
	tq.Notify()
	wantInterrupts(t, tq, 2)
}

func TestNotifyHonoursUsedEvent(t *testing.T) {
	tq := newTestQueue(t, 8, FeatureRingEventIdx)
	tq.drv.setAvailFlags(availFNoInterrupt) // ignored with EVENT_IDX
	pushOne(t, tq)
	tq.Notify() // used_event 0: interrupt when used.idx passes 0
	wantInterrupts(t, tq, 1)
	tq.drv.setUsedEvent(5)
	for range 2 {
		pushOne(t, tq)
	}
	tq.Notify() // used.idx 1 -> 3 does not pass 5
	wantInterrupts(t, tq, 1)
	for range 3 {
		pushOne(t, tq)
	}
	tq.Notify() // 3 -> 6 passes 5
	wantInterrupts(t, tq, 2)
	pushOne(t, tq)
	tq.Notify() // 6 -> 7, but the driver still asks for 5
	wantInterrupts(t, tq, 2)
}

func TestVringNeedEvent(t *testing.T) {
	for _, tc := range []struct {
		event, new, old uint16
		want            bool
	}{
		{0, 1, 0, true}, {5, 3, 1, false}, {5, 6, 3, true}, {5, 7, 6, false}, {5, 5, 3, false},
		{65535, 0, 65534, true}, {65535, 2, 0, false}, {3, 3, 3, false},
	} {
		if got := vringNeedEvent(tc.event, tc.new, tc.old); got != tc.want {
			t.Errorf("vringNeedEvent(%d, %d, %d) = %v", tc.event, tc.new, tc.old, got)
		}
	}
}

func TestPopPublishesAvailEvent(t *testing.T) {
	for _, features := range []uint64{0, FeatureRingEventIdx} {
		tq := newTestQueue(t, 8, features)
		tq.drv.add(writable(1))
		tq.drv.add(writable(1))
		tq.mustPop(t)
		tq.mustPop(t)
		if _, ok, err := tq.Pop(); ok || err != nil {
			t.Fatalf("Pop() = %v, %v", ok, err)
		}
		want := uint16(0)
		if features != 0 {
			want = 2
		}
		if got := tq.drv.availEvent(); got != want {
			t.Errorf("features %#x: avail_event = %d, want %d", features, got, want)
		}
	}
}

func TestPollLeavesAvailEvent(t *testing.T) {
	tq := newTestQueue(t, 8, FeatureRingEventIdx)
	tq.drv.add(writable(1))
	tq.mustPop(t)
	if _, ok, err := tq.Pop(); ok || err != nil {
		t.Fatalf("Pop() = %v, %v", ok, err)
	}
	tq.drv.add(writable(1))
	tq.drv.add(writable(1))
	for range 2 {
		if _, ok, err := tq.Poll(); !ok || err != nil {
			t.Fatalf("Poll() = %v, %v; want the chain added", ok, err)
		}
	}
	if _, ok, err := tq.Poll(); ok || err != nil {
		t.Fatalf("Poll() on an empty queue = %v, %v", ok, err)
	}
	// avail_event still asks for a kick at the chain after the first, which
	// the driver has passed: it adds more without kicking.
	if got := tq.drv.availEvent(); got != 1 {
		t.Errorf("avail_event = %d after Poll emptied the queue; want 1, where Pop left it", got)
	}
}

func TestWaitReturnsOnKick(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	if err := tq.kick.Write(1); err != nil {
		t.Fatal(err)
	}
	if err := tq.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestStopWakesWait(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	done := make(chan error)
	go func() { done <- tq.Wait() }()
	time.Sleep(10 * time.Millisecond) // let Wait block; the test passes either way
	tq.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Wait() = %v, want ErrStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not wake Wait")
	}
	tq.Stop()
	for range 3 {
		if err := tq.Wait(); !errors.Is(err, ErrStopped) {
			t.Fatalf("Wait() after Stop = %v", err)
		}
	}
}

func TestWaitOnClosedKick(t *testing.T) {
	tq := newTestQueue(t, 8, 0)
	kick, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	q, err := NewQueue(tq.Mem(), tq.drv.cfg, 0, kick, tq.n)
	if err != nil {
		t.Fatal(err)
	}
	if err := kick.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Wait(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Wait() on a closed eventfd = %v, want os.ErrClosed", err)
	}
	q.Stop() // must not panic or block on a closed eventfd
	if err := q.Wait(); !errors.Is(err, ErrStopped) {
		t.Errorf("Wait() after Stop = %v", err)
	}
}

// The worker pattern of the contract, with the driver kicking from the test
// goroutine and Stop ending the worker (run with -race).
func TestWorkerStops(t *testing.T) {
	for _, features := range []uint64{0, FeatureRingEventIdx} {
		runWorker(t, newTestQueue(t, 16, features))
	}
}

func runWorker(t *testing.T, tq testQueue) {
	tq.n.irq = make(chan struct{}, 1000)
	exited := make(chan error, 1)
	go func() {
		for {
			if err := tq.Wait(); err != nil {
				exited <- err
				return
			}
			for {
				c, ok, err := tq.Pop()
				if err != nil {
					exited <- err
					return
				}
				if !ok {
					break
				}
				w := NewWriter(tq.Mem(), c.Writable)
				if _, err := w.Write([]byte{byte(c.Head)}); err != nil {
					tq.Fail(err)
				}
				if err := tq.Push(c.Head, w.Written()); err != nil {
					exited <- err
					return
				}
			}
			tq.Notify()
		}
	}()
	const total = 200
	for sent, done := 0, 0; done < total; {
		for ; sent < total && sent-done < 16; sent++ {
			tq.drv.add(writable(1))
			if err := tq.kick.Write(1); err != nil {
				t.Fatal(err)
			}
		}
		// Like Linux's virtqueue_enable_cb: take what was used, ask for an
		// interrupt after it, and look once more before sleeping.
		if u := tq.drv.used(); len(u) > 0 {
			done += len(u)
			tq.drv.setUsedEvent(tq.drv.usedSeen)
			continue
		}
		select {
		case <-tq.n.irq:
		case <-time.After(5 * time.Second):
			t.Fatalf("no interrupt after %d of %d chains", done, total)
		}
	}
	tq.Stop()
	if err := <-exited; !errors.Is(err, ErrStopped) {
		t.Fatalf("worker ended with %v", err)
	}
}

// The counters say what the queue served: every notification the eventfd
// added up, every chain popped, every interrupt actually sent.
func TestQueueCounts(t *testing.T) {
	tq := newTestQueue(t, 8, FeatureRingEventIdx)
	var c QueueCounters
	tq.CountInto(&c)
	for range 3 { // three notifications before the worker wakes: one read
		if err := tq.kick.Write(1); err != nil {
			t.Fatal(err)
		}
	}
	if err := tq.Wait(); err != nil {
		t.Fatal(err)
	}
	pushOne(t, tq)
	tq.Notify() // used_event 0 is passed: an interrupt
	tq.drv.setUsedEvent(5)
	pushOne(t, tq)
	tq.Notify()                                   // 1 -> 2 does not pass 5: none
	if _, ok, err := tq.Pop(); ok || err != nil { // an empty ring counts nothing
		t.Fatalf("Pop() = %v, %v; want empty", ok, err)
	}
	got := [3]uint64{c.Kicks.Load(), c.Chains.Load(), c.Interrupts.Load()}
	if want := [3]uint64{3, 2, 1}; got != want {
		t.Errorf("kicks, chains, interrupts = %v, want %v", got, want)
	}
}
