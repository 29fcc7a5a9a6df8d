package virtio

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/govmm/govmm/memory"
)

// placeBuffers writes each part at its own address and describes it.
func placeBuffers(t *testing.T, mem *memory.RAM, parts ...string) []Buffer {
	t.Helper()
	var bufs []Buffer
	addr := memory.GuestAddress(0x10000)
	for _, p := range parts {
		if err := mem.WriteAt([]byte(p), addr); err != nil {
			t.Fatal(err)
		}
		bufs = append(bufs, Buffer{Addr: addr, Len: uint32(len(p))})
		addr += 0x1000
	}
	return bufs
}

func TestReaderReadsBuffersInOrder(t *testing.T) {
	mem := newTestRAM(t, memory.MiB)
	bufs := placeBuffers(t, mem, "hello", "", ", ", "world")
	if err := iotest.TestReader(NewReader(mem, bufs), []byte("hello, world")); err != nil {
		t.Error(err)
	}
	r := NewReader(mem, bufs)
	if r.Remaining() != 12 {
		t.Errorf("Remaining() = %d, want 12", r.Remaining())
	}
	got, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || string(got) != "hello, world" || r.Remaining() != 0 {
		t.Errorf("byte by byte: %q, %v, %d left", got, err, r.Remaining())
	}
	if n, err := NewReader(mem, nil).Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Errorf("empty Reader: Read = %d, %v; want io.EOF", n, err)
	}
}

func TestReaderSkip(t *testing.T) {
	mem := newTestRAM(t, memory.MiB)
	r := NewReader(mem, placeBuffers(t, mem, "head", "er|bo", "dy"))
	if err := r.Skip(7); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || string(got) != "body" {
		t.Errorf("after Skip(7): %q, %v", got, err)
	}
	r = NewReader(mem, placeBuffers(t, mem, "abc", "de"))
	if err := r.Skip(6); !errors.Is(err, io.ErrUnexpectedEOF) || r.Remaining() != 0 {
		t.Errorf("Skip past the end = %v, %d left; want io.ErrUnexpectedEOF and nothing left", err, r.Remaining())
	}
	if err := r.Skip(0); err != nil {
		t.Errorf("Skip(0) at the end = %v", err)
	}
}

func TestWriterFillsBuffersInOrder(t *testing.T) {
	mem := newTestRAM(t, memory.MiB)
	bufs := placeBuffers(t, mem, "....", "", "...", ".....")
	w := NewWriter(mem, bufs)
	for _, p := range []string{"ab", "cdefg", "", "hi", "jkl"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if w.Written() != 12 || w.Remaining() != 0 {
		t.Errorf("Written, Remaining = %d, %d; want 12, 0", w.Written(), w.Remaining())
	}
	got, err := io.ReadAll(NewReader(mem, bufs))
	if err != nil || string(got) != "abcdefghijkl" {
		t.Errorf("guest memory holds %q, %v", got, err)
	}
}

func TestWriterDoesNotTruncateSilently(t *testing.T) {
	mem := newTestRAM(t, memory.MiB)
	bufs := placeBuffers(t, mem, "...", "..")
	w := NewWriter(mem, bufs)
	n, err := w.Write([]byte("0123456"))
	if n != 5 || !errors.Is(err, io.ErrShortWrite) || w.Written() != 5 {
		t.Fatalf("Write of 7 bytes into 5 = %d, %v (written %d); want 5 and io.ErrShortWrite", n, err, w.Written())
	}
	if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("Write when full = %d, %v", n, err)
	}
	if n, err := w.Write(nil); n != 0 || err != nil {
		t.Errorf("empty Write when full = %d, %v", n, err)
	}
	got, err := io.ReadAll(NewReader(mem, bufs))
	if err != nil || !bytes.Equal(got, []byte("01234")) {
		t.Errorf("guest memory holds %q, %v", got, err)
	}
}

// Buffers are re-checked on every access, so a Buffer that was never
// validated fails cleanly instead of reaching past guest RAM.
func TestReaderWriterCheckBounds(t *testing.T) {
	mem := newTestRAM(t, memory.MiB)
	bad := []Buffer{{Addr: memory.MiB - 2, Len: 4}}
	if _, err := NewReader(mem, bad).Read(make([]byte, 4)); !errors.Is(err, memory.ErrOutOfRange) {
		t.Errorf("Read = %v, want ErrOutOfRange", err)
	}
	if _, err := NewWriter(mem, bad).Write(make([]byte, 4)); !errors.Is(err, memory.ErrOutOfRange) {
		t.Errorf("Write = %v, want ErrOutOfRange", err)
	}
}
