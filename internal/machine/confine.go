package machine

import (
	"fmt"

	"github.com/govmm/govmm/devices/virtio/net/tap"
	"github.com/govmm/govmm/internal/caps"
	"github.com/govmm/govmm/internal/seccomp"
	"github.com/govmm/govmm/kvm"
)

// confine leaves the process what a running VM needs: no capability (every
// device is open, every vCPU created) and, with c.Seccomp, the system calls
// of package seccomp plus the ioctls the VM's vCPUs and taps issue from now
// on. It runs while every vCPU waits at its Go gate. A cgo build, whose
// other threads keep their capabilities, is refused rather than half
// confined.
func confine(c *Confine) error {
	if err := caps.DropAll(); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	if !c.Seccomp {
		return nil
	}
	ioctls := append(append(append([]uint64(nil), c.Ioctls...), kvm.RunIoctls()...), tap.RunIoctls()...)
	return seccomp.Install(seccomp.Rules{Ioctls: ioctls, Files: c.Files, Status: c.KillStatus})
}
