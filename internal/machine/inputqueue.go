package machine

import (
	"io"
	"sync"
)

// maxPendingInput bounds typed input the guest has not read yet: a guest
// that never reads its console must not grow govmm's memory.
const maxPendingInput = 64 << 10

// inputQueue carries typed console input to the virtio console's reader.
// Write never blocks, so a guest that does not read cannot stall the
// terminal (or Ctrl-A x); input past maxPendingInput is dropped, as a UART
// whose FIFO is full drops it.
type inputQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	closed bool
}

func newInputQueue() *inputQueue {
	q := &inputQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Write queues what fits and reports it all written.
func (q *inputQueue) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, io.ErrClosedPipe
	}
	room := maxPendingInput - len(q.buf)
	q.buf = append(q.buf, p[:min(room, len(p))]...)
	q.cond.Signal()
	return len(p), nil
}

// Read waits for input; io.EOF once closed.
func (q *inputQueue) Read(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.buf) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, q.buf)
	q.buf = q.buf[n:]
	return n, nil
}

// Close wakes the reader with io.EOF and drops later input.
func (q *inputQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
	return nil
}
