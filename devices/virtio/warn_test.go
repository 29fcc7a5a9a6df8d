package virtio

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A guest that causes a warning a thousand times a second gets one line a
// second into the host's log, and the next line says how many were held
// back.
func TestWarnerLimitsAndCounts(t *testing.T) {
	var out bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&out, nil)))
	defer slog.SetDefault(old)

	clock := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	w := NewWarner("device", "net0")
	w.now = func() time.Time { return clock }
	for range 1000 {
		w.Warn("dropping a transmit frame")
		clock = clock.Add(time.Millisecond)
	}
	w.Warn("dropping a transmit frame")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines for 1001 warnings over 1 s; want 2:\n%s", len(lines), out.String())
	}
	if strings.Contains(lines[0], "suppressed") || !strings.Contains(lines[0], "device=net0") {
		t.Errorf("first line %q: want the device and no count", lines[0])
	}
	if !strings.Contains(lines[1], "suppressed=999") {
		t.Errorf("second line %q: want suppressed=999", lines[1])
	}
}
