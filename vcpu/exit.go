package vcpu

import (
	"fmt"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

// Buses are where port I/O and MMIO exits go.
type Buses struct {
	PIO  *devices.Bus
	MMIO *devices.Bus
}

// Stop is why a vCPU loop ended because of the guest.
type Stop struct {
	Event  devices.Event
	Detail string
}

// handleExit serves one exit. It returns a non-nil Stop when the guest ended
// the VM from this vCPU, or an error when the vCPU cannot go on.
func handleExit(ex kvm.Exit, b Buses, c *Counters) (*Stop, error) {
	switch ex.Reason {
	case kvm.ExitIO:
		c.PIO.Add(1)
		serveIO(ex.IO, b.PIO)
	case kvm.ExitMMIO:
		c.MMIO.Add(1)
		if ex.MMIO.Write {
			b.MMIO.Write(ex.MMIO.Addr, ex.MMIO.Data)
		} else {
			b.MMIO.Read(ex.MMIO.Addr, ex.MMIO.Data)
		}
	case kvm.ExitIntr:
		// A signal ended KVM_RUN; the loop re-checks whether to stop.
	case kvm.ExitShutdown:
		return &Stop{Event: devices.Crash, Detail: "triple fault (KVM_EXIT_SHUTDOWN)"}, nil
	case kvm.ExitSystemEvent:
		return systemEvent(ex.SystemEventType), nil
	case kvm.ExitInternalError:
		return &Stop{Event: devices.Crash, Detail: fmt.Sprintf("KVM internal error, suberror %d (the guest ran something KVM cannot emulate)", ex.InternalSuberror)}, nil
	case kvm.ExitFailEntry:
		return nil, fmt.Errorf("KVM could not enter the guest: hardware entry failure reason %#x", ex.FailEntryReason)
	default:
		return nil, fmt.Errorf("unexpected exit %v", ex.Reason)
	}
	return nil, nil
}

// serveIO splits a (possibly repeated, as for REP INS/OUTS) port access into
// single accesses of the instruction's width.
func serveIO(io kvm.IOExit, bus *devices.Bus) {
	for i := 0; i < io.Count; i++ {
		chunk := io.Data[i*io.Size : (i+1)*io.Size]
		if io.Out {
			bus.Write(uint64(io.Port), chunk)
		} else {
			bus.Read(uint64(io.Port), chunk)
		}
	}
}

func systemEvent(t uint32) *Stop {
	switch t {
	case kvm.SystemEventShutdown:
		return &Stop{Event: devices.PowerOff, Detail: "system event: shutdown"}
	case kvm.SystemEventReset:
		return &Stop{Event: devices.Reset, Detail: "system event: reset"}
	case kvm.SystemEventCrash:
		return &Stop{Event: devices.Crash, Detail: "system event: crash"}
	}
	return &Stop{Event: devices.Crash, Detail: fmt.Sprintf("unknown system event %d", t)}
}
