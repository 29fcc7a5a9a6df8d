package govmm

import (
	"context"
	"errors"
	"testing"

	"github.com/govmm/govmm/internal/machine"
)

// A VM that is not running says so with the API's one sentinel.
func TestNotRunning(t *testing.T) {
	v := &VM{m: &machine.Machine{}}
	if _, _, err := v.Stats(); err != ErrNotRunning {
		t.Errorf("Stats before Run: %v, want ErrNotRunning", err)
	}
	if s, err := v.VCPUSnapshots(context.Background()); err != ErrNotRunning || s != nil {
		t.Errorf("VCPUSnapshots before Run: %v, %v; want ErrNotRunning", s, err)
	}
	if !errors.Is(apiError(machine.ErrNoStats), ErrStatsUnavailable) {
		t.Errorf("a KVM without statistics: %v, want ErrStatsUnavailable", apiError(machine.ErrNoStats))
	}
}

// Each way the machine ends is the API's reason of the same name.
func TestExitReasons(t *testing.T) {
	for m, want := range map[machine.Reason]ExitReason{
		machine.PoweredOff: PoweredOff, machine.Rebooted: Rebooted,
		machine.Crashed: Crashed, machine.Stopped: Stopped,
	} {
		if got := exitReason(m); got != want {
			t.Errorf("machine reason %d is %v, want %v", m, got, want)
		}
	}
	for r, want := range map[ExitReason]string{PoweredOff: "powered off", Rebooted: "rebooted", Crashed: "crashed", Stopped: "stopped", 0: "unknown"} {
		if r.String() != want {
			t.Errorf("%d prints %q, want %q", int(r), r.String(), want)
		}
	}
}
