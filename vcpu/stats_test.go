package vcpu

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/kvm"
)

// A KVM without binary statistics (Linux before 5.14) runs the vCPU all the
// same: the reason goes in the Result, not its error. Any other failure to
// open them stays a failure.
func TestNoStatsIsNotAFailure(t *testing.T) {
	missing := fmt.Errorf("KVM_GET_STATS_FD of vCPU 0: %w: %w", kvm.ErrNoStats, unix.ENOTTY)
	if unavailable, fail := noStats(missing); unavailable != missing || fail != nil {
		t.Errorf("noStats(%v) = %v, %v; want the reason and no failure", missing, unavailable, fail)
	}
	other := errors.New("too many open files")
	if unavailable, fail := noStats(other); unavailable != nil || fail != other {
		t.Errorf("noStats(%v) = %v, %v; want a failure", other, unavailable, fail)
	}
	if unavailable, fail := noStats(nil); unavailable != nil || fail != nil {
		t.Errorf("noStats(nil) = %v, %v", unavailable, fail)
	}
}
