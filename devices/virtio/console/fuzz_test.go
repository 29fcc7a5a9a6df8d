package console

import (
	"bytes"
	"errors"
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

const fuzzRAM = 64 * memory.KiB

// FuzzConsole hands the console's workers chains a guest could write, with
// or without INDIRECT_DESC: a transmitq chain to emit, or a receiveq chain
// to deliver input into. A transmitted chain reaches the output exactly and
// changes no guest memory; delivered input goes into the writable buffers
// in order, as far as they hold it, and nowhere else. A chain with buffers
// of the wrong direction is refused.
func FuzzConsole(f *testing.F) {
	raw := virtiotest.NewRawQueue(f, fuzzRAM)
	mem, all := raw.RAM(), raw.Image()
	want := make([]byte, fuzzRAM)
	for i, descs := range virtiotest.RawSeeds() {
		f.Add(i%2 == 0, i >= 6, []byte("ls -l\n"), descs)
		f.Add(i%2 == 1, i >= 6, bytes.Repeat([]byte("x"), 300), descs)
	}
	f.Fuzz(func(t *testing.T, transmit, indirect bool, input, descs []byte) {
		_, c, ok := raw.Pop(t, descs, indirect)
		if !ok {
			return
		}
		copy(want, all)
		if transmit {
			checkEmit(t, mem, c)
		} else {
			checkDeliver(t, mem, c, input, want)
		}
		if !bytes.Equal(want, all) {
			t.Fatal("guest memory is not what the chain's buffers say it should be")
		}
	})
}

// checkEmit checks that c's readable bytes, all of them, reach the output.
func checkEmit(t *testing.T, mem *memory.RAM, c virtio.Chain) {
	var out bytes.Buffer
	d := &Device{out: &out}
	err := d.emit(mem, c)
	if wrong := len(c.Writable) > 0; wrong != errors.Is(err, errTxWritable) || !wrong && err != nil {
		t.Fatalf("emit of a chain with %d writable buffers: %v", len(c.Writable), err)
	}
	if err != nil {
		return
	}
	want := virtio.NewReader(mem, c.Readable)
	w := make([]byte, want.Remaining())
	if err := want.ReadFull(w); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), w) {
		t.Fatalf("output %q; the chain holds %q", out.Bytes(), w)
	}
}

// checkDeliver checks what deliver returns and writes into want what it
// should have written to guest memory.
func checkDeliver(t *testing.T, mem *memory.RAM, c virtio.Chain, input, want []byte) {
	n, err := deliver(mem, c, input)
	if wrong := len(c.Readable) > 0; wrong != errors.Is(err, errRxReadable) || !wrong && err != nil {
		t.Fatalf("deliver into a chain with %d readable buffers: %v", len(c.Readable), err)
	}
	if err != nil {
		return
	}
	if uint64(n) != min(uint64(len(input)), c.WritableLen()) {
		t.Fatalf("delivered %d of %d bytes into %d writable bytes", n, len(input), c.WritableLen())
	}
	left := input[:n]
	for _, b := range c.Writable {
		left = left[copy(want[b.Addr:uint64(b.Addr)+uint64(b.Len)], left):]
	}
}
