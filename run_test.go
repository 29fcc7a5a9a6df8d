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
