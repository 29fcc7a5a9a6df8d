package conout

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is a host output that a test can read or stop reading.
type sink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	stuck  chan struct{} // while open, Write blocks: a host that does not read
	wrote  chan struct{} // one send per Write, if someone listens
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 1024)} }

func (s *sink) Write(p []byte) (int, error) {
	if s.stuck != nil {
		<-s.stuck
	}
	s.mu.Lock()
	s.buf.Write(p)
	s.writes++
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the sink holds want; generous, since it only bounds a
// test that would otherwise hang.
func (s *sink) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for s.String() != want {
		select {
		case <-s.wrote:
		case <-deadline:
			t.Fatalf("host got %q; want %q", s.String(), want)
		}
	}
}

// A line reaches the host whole and at once; bytes stay in order across
// many writes and flushes.
func TestLinesArriveInOrder(t *testing.T) {
	s := newSink()
	o := New(s)
	defer o.Close()
	var want strings.Builder
	for i := range 2000 {
		line := strings.Repeat(string(rune('a'+i%26)), i%97) + "\n"
		want.WriteString(line)
		for j := range len(line) {
			o.WriteByte(line[j])
		}
	}
	s.waitFor(t, want.String())
	if s.writes >= 2000 {
		t.Errorf("%d host writes for 2000 lines; want fewer, the bytes gathered", s.writes)
	}
}

// A prompt without a newline still reaches the host with nothing after it:
// a shell prompt, an echoed keystroke.
func TestPromptWithoutNewlineArrives(t *testing.T) {
	s := newSink()
	o := New(s)
	defer o.Close()
	for _, b := range []byte("login: ") {
		o.WriteByte(b)
	}
	s.waitFor(t, "login: ")
	o.Write([]byte("r"))
	s.waitFor(t, "login: r")
}

// A host that stops reading costs the guest nothing: every write returns at
// once, the bytes past the buffer are counted, and Close returns in bounded
// time with the rest counted too.
func TestStuckHostNeverBlocksTheWriter(t *testing.T) {
	s := newSink()
	s.stuck = make(chan struct{})
	o := New(s)
	done := make(chan struct{})
	const n = 4 << 20
	go func() {
		defer close(done)
		for range n / 1024 {
			o.Write(bytes.Repeat([]byte{'x'}, 1024))
		}
		for range 1024 {
			o.WriteByte('y')
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes blocked on a host that does not read")
	}
	if d := o.Dropped(); d < n-2*maxPending {
		t.Errorf("dropped %d of %d bytes; want at least all but two buffers", d, n+1024)
	}
	start := time.Now()
	o.Close()
	if took := time.Since(start); took > closeWait+time.Second {
		t.Errorf("Close took %v with the host stuck; want about %v", took, closeWait)
	}
	if d := o.Dropped(); d < n+1024-maxPending {
		t.Errorf("after Close, dropped %d of %d bytes: what never reached the host must be counted", d, n+1024)
	}
	close(s.stuck) // the host reads again: the writer goroutine ends
	select {
	case <-o.exited:
	case <-time.After(5 * time.Second):
		t.Error("the writer did not end once the host's write returned")
	}
}

// Close writes out what is waiting when the host reads.
func TestCloseFlushes(t *testing.T) {
	s := newSink()
	o := New(s)
	o.Write([]byte("reboot: Power down"))
	o.Close()
	if got := s.String(); got != "reboot: Power down" {
		t.Errorf("after Close the host has %q", got)
	}
	o.Write([]byte("late"))
	o.WriteByte('!')
	if d := o.Dropped(); d != 5 {
		t.Errorf("%d bytes dropped after Close; want the 5 written after it", d)
	}
}

// A host output that fails loses the bytes, counted, and the console goes on.
func TestHostErrorsAreCounted(t *testing.T) {
	o := New(errWriter{})
	o.Write([]byte("line\n"))
	o.Close()
	if d := o.Dropped(); d != 5 {
		t.Errorf("dropped %d; want 5", d)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("EPIPE") }

// The serial port calls WriteByte on the vCPU thread once per byte: it must
// not allocate once the buffers have grown.
func TestWriteByteDoesNotAllocate(t *testing.T) {
	o := New(io.Discard)
	defer o.Close()
	for range 64 << 10 {
		o.WriteByte('x')
	}
	if n := testing.AllocsPerRun(10000, func() { o.WriteByte('x') }); n != 0 {
		t.Errorf("WriteByte: %v allocations per call", n)
	}
}

func BenchmarkWriteByte(b *testing.B) {
	o := New(io.Discard)
	defer o.Close()
	for i := 0; b.Loop(); i++ {
		c := byte('a' + i%26)
		if i%80 == 79 {
			c = '\n'
		}
		o.WriteByte(c)
	}
}
