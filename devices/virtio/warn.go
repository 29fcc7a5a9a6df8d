package virtio

import (
	"log/slog"
	"sync"
	"time"
)

// Warner logs a device's warnings, at most one a second, so that a guest
// sending junk or hammering a failing backend cannot flood the host's log.
type Warner struct {
	attrs []any // the device's identity, first on every line
	mu    sync.Mutex
	last  time.Time
}

// NewWarner returns a Warner whose lines start with attrs (slog pairs).
func NewWarner(attrs ...any) *Warner { return &Warner{attrs: attrs} }

// Warn logs msg with args unless a line went out less than a second ago.
func (w *Warner) Warn(msg string, args ...any) {
	w.mu.Lock()
	now := time.Now()
	ok := now.Sub(w.last) >= time.Second
	if ok {
		w.last = now
	}
	w.mu.Unlock()
	if ok {
		slog.Warn(msg, append(append([]any{}, w.attrs...), args...)...)
	}
}
