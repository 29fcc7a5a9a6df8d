package virtio

import (
	"log/slog"
	"sync"
	"time"
)

// Warner logs a device's warnings, at most one a second, so that a guest
// sending junk or hammering a failing backend cannot flood the host's log.
// A device keeps one Warner for its life, resets included, so that reset
// storms are limited too; the lines held back are counted on the next
// line that goes out.
type Warner struct {
	log        *slog.Logger // nil: slog.Default()
	attrs      []any        // the device's identity, first on every line
	now        func() time.Time
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// NewWarner returns a Warner whose lines start with attrs (slog pairs).
func NewWarner(attrs ...any) *Warner { return &Warner{attrs: attrs, now: time.Now} }

// newWarnerTo is NewWarner writing to log instead of slog.Default().
func newWarnerTo(log *slog.Logger, attrs ...any) *Warner {
	w := NewWarner(attrs...)
	w.log = log
	return w
}

// Warn logs msg with args unless a line went out less than a second ago.
func (w *Warner) Warn(msg string, args ...any) {
	w.mu.Lock()
	now := w.now()
	ok := now.Sub(w.last) >= time.Second
	var held uint64
	if ok {
		w.last = now
		held, w.suppressed = w.suppressed, 0
	} else {
		w.suppressed++
	}
	w.mu.Unlock()
	if !ok {
		return
	}
	line := append(append([]any{}, w.attrs...), args...)
	if held > 0 {
		line = append(line, "suppressed", held) // lines held back since the last one
	}
	if w.log == nil {
		slog.Warn(msg, line...)
		return
	}
	w.log.Warn(msg, line...)
}
