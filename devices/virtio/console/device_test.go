package console

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

// output is a goroutine-safe io.Writer the test can wait on.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.mu.Lock()
		got := o.buf.String()
		o.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type rig struct {
	dev    *Device
	mem    *memory.RAM
	rx, tx *virtiotest.Driver
	in     *io.PipeWriter
	out    *output
}

func newRig(t *testing.T) *rig {
	t.Helper()
	mem := virtiotest.NewRAM(t, 8*memory.MiB)
	pr, pw := io.Pipe()
	r := &rig{
		mem: mem, in: pw, out: &output{},
		rx: virtiotest.NewDriver(t, mem, memory.MiB, queueSize, memory.MiB),
		tx: virtiotest.NewDriver(t, mem, 3*memory.MiB, queueSize, memory.MiB),
	}
	r.dev = New(pr, r.out)
	t.Cleanup(func() {
		r.dev.Reset()
		r.dev.Close()
		pw.Close()
	})
	return r
}

func (r *rig) activate(t *testing.T) {
	t.Helper()
	qs := []*virtio.Queue{r.rx.Queue(virtio.FeatureVersion1), r.tx.Queue(virtio.FeatureVersion1)}
	if err := r.dev.Activate(virtio.Activation{Mem: r.mem, Queues: qs}); err != nil {
		t.Fatal(err)
	}
}

func TestTransmitWritesOutput(t *testing.T) {
	r := newRig(t)
	r.activate(t)
	c := r.tx.AddChain([][]byte{[]byte("hello, "), []byte("world\n")}, nil)
	r.tx.Kick()
	if u := r.tx.WaitUsed(); u.ID != uint32(c.Head) || u.Len != 0 {
		t.Fatalf("used %+v", u)
	}
	r.out.waitFor(t, "hello, world\n")
}

func TestReceiveSplitsInputAcrossBuffers(t *testing.T) {
	r := newRig(t)
	r.activate(t)
	var chains []virtiotest.Chain
	for range 3 {
		chains = append(chains, r.rx.AddChain(nil, []uint32{4}))
	}
	r.rx.Kick()
	if _, err := r.in.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for i, want := range []uint32{4, 4, 2} {
		u := r.rx.WaitUsed()
		if u.ID != uint32(chains[i].Head) || u.Len != want {
			t.Fatalf("used %+v, want head %d len %d", u, chains[i].Head, want)
		}
		got = append(got, r.rx.Bytes(chains[i].Writable[0])[:u.Len]...)
	}
	if string(got) != "0123456789" {
		t.Fatalf("guest received %q", got)
	}
}

func TestInputBeforeActivationAndAcrossResetIsKept(t *testing.T) {
	r := newRig(t)
	go r.in.Write([]byte("early"))
	time.Sleep(20 * time.Millisecond)
	r.activate(t) // no receive buffers yet: the worker holds the input
	time.Sleep(20 * time.Millisecond)
	r.dev.Reset()

	r.rx = virtiotest.NewDriver(t, r.mem, memory.MiB, queueSize, memory.MiB)
	r.tx = virtiotest.NewDriver(t, r.mem, 3*memory.MiB, queueSize, memory.MiB)
	r.activate(t)
	c := r.rx.AddChain(nil, []uint32{64})
	r.rx.Kick()
	u := r.rx.WaitUsed()
	if got := string(r.rx.Bytes(c.Writable[0])[:u.Len]); got != "early" {
		t.Fatalf("guest received %q, want %q", got, "early")
	}
}

func TestResetWhileBlockedOnInput(t *testing.T) {
	r := newRig(t)
	r.activate(t)
	r.rx.AddChain(nil, []uint32{64})
	r.rx.Kick()
	time.Sleep(20 * time.Millisecond) // the worker waits for input that never comes
	done := make(chan struct{})
	go func() { r.dev.Reset(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Reset blocked behind the input reader")
	}
}

func TestCloseEndsTheInputGoroutine(t *testing.T) {
	pr, pw := io.Pipe()
	d := New(pr, io.Discard)
	if _, err := pw.Write([]byte("x")); err != nil { // read by the goroutine, which now waits to hand it over
		t.Fatal(err)
	}
	d.Close()
	written := make(chan error, 1)
	go func() { _, err := pw.Write([]byte("y")); written <- err }()
	select {
	case err := <-written:
		t.Fatalf("input still read after Close (write returned %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	pw.Close()
}

func TestWrongDirectionBreaksQueue(t *testing.T) {
	r := newRig(t)
	r.activate(t)
	r.tx.AddChain(nil, []uint32{8})
	r.tx.Kick()
	if err := r.tx.Notifier().WaitBroken(t); !strings.Contains(err.Error(), "transmitq") {
		t.Fatalf("broken with %v", err)
	}

	r.rx.AddChain([][]byte{[]byte("x")}, []uint32{8})
	r.rx.Kick()
	if _, err := r.in.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if err := r.rx.Notifier().WaitBroken(t); !strings.Contains(err.Error(), "receiveq") {
		t.Fatalf("broken with %v", err)
	}
}

func TestConfigAndFeatures(t *testing.T) {
	d := New(nil, io.Discard)
	defer d.Close()
	b := []byte{1, 2, 3, 4}
	d.ReadConfig(0, b)
	if !bytes.Equal(b, make([]byte, 4)) || d.Features() != 0 || d.Type() != virtio.TypeConsole || len(d.QueueMaxSizes()) != 2 {
		t.Fatalf("config %x features %#x type %d queues %v", b, d.Features(), d.Type(), d.QueueMaxSizes())
	}
	d.Reset()
}
