// Package conout sits between a guest's console and the host's output, so
// that what the host does with the output never reaches the vCPU. The
// serial port transmits on the vCPU thread, a byte per exit: writing each
// byte to the host there cost a system call per byte and, when the host
// stopped reading (a full pipe, a stuck terminal), stalled the vCPU and
// with it the VM's stop. An Output takes the bytes into a bounded buffer
// and a goroutine of its own writes them out: at a newline, when a lot is
// waiting, and at most a millisecond after the first byte, so a prompt or
// an echoed keystroke still shows at once. When the host does not take
// the output fast enough, what does not fit is dropped and counted.
package conout

import (
	"bytes"
	"io"
	"sync"
	"time"
)

const (
	// maxPending bounds the bytes waiting for the host, besides the chunk
	// being written: a guest can print forever at no more than this cost.
	maxPending = 256 << 10
	// flushAt is the waiting size worth a write without a newline.
	flushAt = 4 << 10
	// maxDelay is how long a byte without a newline waits for more.
	maxDelay = time.Millisecond
	// closeWait bounds how long Close waits for the host to take the rest.
	closeWait = 500 * time.Millisecond
)

// Output is a console's way out to the host. Write and WriteByte never
// block on the host and never fail; they are safe for concurrent use.
type Output struct {
	out io.Writer

	mu      sync.Mutex
	pending []byte // waiting for the writer goroutine
	urgent  bool   // a newline or flushAt bytes are waiting: write now
	dropped uint64
	closed  bool

	kick    chan struct{} // cap 1: bytes arrived, or became urgent
	closing chan struct{}
	exited  chan struct{}
}

// New starts an Output writing to out.
func New(out io.Writer) *Output {
	o := &Output{
		out:     out,
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	go o.run()
	return o
}

// Write queues p for the host and reports it all taken: a byte that does not
// fit is the host's loss, counted by Dropped, never the guest's wait.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	if o.closed {
		o.dropped += uint64(len(p))
		o.mu.Unlock()
		return len(p), nil
	}
	first := len(o.pending) == 0
	take := min(len(p), maxPending-len(o.pending))
	o.dropped += uint64(len(p) - take)
	o.pending = append(o.pending, p[:take]...)
	nowUrgent := !o.urgent && (len(o.pending) >= flushAt || bytes.IndexByte(p[:take], '\n') >= 0)
	o.urgent = o.urgent || nowUrgent
	o.mu.Unlock()
	if (first && take > 0) || nowUrgent {
		o.wake()
	}
	return len(p), nil
}

// WriteByte queues one byte: the serial port's path. The byte's array
// stays on the stack (Write only copies from it), so this allocates nothing.
func (o *Output) WriteByte(b byte) error {
	one := [1]byte{b}
	_, err := o.Write(one[:])
	return err
}

func (o *Output) wake() {
	select {
	case o.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Dropped is how many bytes the host did not take in time, or that came
// after Close.
func (o *Output) Dropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// Close writes what is waiting, waiting at most closeWait for a host that
// does not read, and stops the writer. Bytes written after it are dropped.
func (o *Output) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	o.mu.Unlock()
	close(o.closing)
	select {
	case <-o.exited:
	case <-time.After(closeWait):
		// The host's output is stuck: count what it never took and leave the
		// writer blocked in it; it ends when the write does.
		o.mu.Lock()
		o.dropped += uint64(len(o.pending))
		o.pending = nil
		o.mu.Unlock()
	}
	return nil
}

// run is the writer goroutine.
func (o *Output) run() {
	defer close(o.exited)
	timer := time.NewTimer(maxDelay)
	timer.Stop()
	var chunk []byte // what is being written; swapped with pending
	for {
		o.mu.Lock()
		waiting, urgent := len(o.pending), o.urgent
		o.mu.Unlock()
		if waiting == 0 {
			select {
			case <-o.kick:
				continue
			case <-o.closing:
				return
			}
		}
		if !urgent {
			timer.Reset(maxDelay)
			select {
			case <-o.kick: // a newline, or much more
			case <-timer.C:
			case <-o.closing:
			}
			timer.Stop()
		}
		chunk = o.take(chunk[:0])
		if _, err := o.out.Write(chunk); err != nil {
			o.mu.Lock()
			o.dropped += uint64(len(chunk)) // the host refused it: lost the same
			o.mu.Unlock()
		}
	}
}

// take swaps the waiting bytes for buf, so that the vCPUs append to the
// buffer the last write used while this one is written.
func (o *Output) take(buf []byte) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	chunk := o.pending
	o.pending, o.urgent = buf, false
	return chunk
}
