package main

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/govmm/govmm/cmd/govmm/internal/agenthost"
)

// launched is when govmm began, as near to its exec as Go lets us see: the
// origin of run --bundle's start timeline.
var launched = time.Now()

// bundleStart is --stats's account of a run --bundle start, in
// milliseconds on two clocks: the host's since govmm began, and the
// guest's uptime (CLOCK_BOOTTIME) at the same events. Comparing them
// shows where a start goes: before the guest kernel's clock starts
// (govmm's own start, loading the kernel, its decompression), the
// kernel's boot, init's setup (modules, ports, the root's mounts) and the
// process's own start to its first output. Absent fields did not happen.
type bundleStart struct {
	ReadyMS            float64 `json:"ready_ms,omitempty"`
	StartedMS          float64 `json:"started_ms,omitempty"`
	FirstOutputMS      float64 `json:"first_output_ms,omitempty"`
	GuestReadyUptimeMS float64 `json:"guest_ready_uptime_ms,omitempty"`
	GuestExecUptimeMS  float64 `json:"guest_exec_uptime_ms,omitempty"`
}

func newBundleStart(tl agenthost.Timeline, firstOutput time.Time) *bundleStart {
	since := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Sub(launched).Microseconds()) / 1e3
	}
	return &bundleStart{
		ReadyMS:            since(tl.Ready),
		StartedMS:          since(tl.Started),
		FirstOutputMS:      since(firstOutput),
		GuestReadyUptimeMS: tl.Guest.ReadyUptimeMS,
		GuestExecUptimeMS:  tl.Guest.ExecUptimeMS,
	}
}

// firstWrite notes when the first byte reached any of the writers it
// wraps: the process's first output, on stdout or stderr.
type firstWrite struct {
	ns atomic.Int64 // since launched; 0 until a byte came
}

func (f *firstWrite) wrap(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if len(p) > 0 && f.ns.Load() == 0 {
			f.ns.CompareAndSwap(0, max(int64(time.Since(launched)), 1))
		}
		return w.Write(p)
	})
}

// time is when the first byte came; zero if none has.
func (f *firstWrite) time() time.Time {
	if ns := f.ns.Load(); ns != 0 {
		return launched.Add(time.Duration(ns))
	}
	return time.Time{}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }
