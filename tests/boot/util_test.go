package boot

import (
	"bytes"
	"fmt"
	"sync"
)

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }

// syncBuffer is a console the test reads while the VM writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
