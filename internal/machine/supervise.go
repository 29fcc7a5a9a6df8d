package machine

import (
	"context"
	"errors"
	"fmt"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// stopper is what the supervisor needs of a running vCPU: *vcpu.VCPU.
type stopper interface{ Stop() }

// supervise waits for the first reason to stop (ctx, a device's event, a
// vCPU that ended), stops every vCPU and collects all their results, summing
// their statistics into res. The first reason wins; a vCPU's error makes the
// VM Crashed and is returned.
func supervise(ctx context.Context, cpus []stopper, events <-chan devices.Event, done <-chan vcpu.Result,
	reason func(devices.Event) (Reason, string), res *Result) error {
	var errs []error
	remaining := len(cpus)
	stopping := false
	stop := func(r Reason, detail string) {
		if stopping {
			return
		}
		stopping = true
		res.Reason, res.Detail = r, detail
		for _, c := range cpus {
			c.Stop()
		}
	}
	for remaining > 0 {
		select {
		case <-ctx.Done():
			stop(Stopped, context.Cause(ctx).Error())
		case e := <-events:
			stop(reason(e))
		case r := <-done:
			remaining--
			addStats(res, r)
			if r.Err != nil {
				errs = append(errs, r.Err)
				stop(Crashed, r.Err.Error())
			}
			if r.Stop != nil {
				// A request the guest made before this vCPU ended is
				// the reason: Linux, when a reset through the i8042 does
				// not take at once, falls back to a triple fault (ten
				// pulses, then one), and that must not turn a reboot or a
				// panic into a crash because select chose at random.
				select {
				case e := <-events:
					stop(reason(e))
				default:
				}
				why, _ := reason(r.Stop.Event)
				stop(why, r.Stop.Detail)
			}
			// A vCPU that ended with neither was told to stop.
		}
	}
	return errors.Join(errs...)
}

// guestWords is what eventReason reads of guest RAM: *memory.RAM.
type guestWords interface {
	ReadUint16(memory.GuestAddress) (uint16, error)
}

func (m *Machine) eventReason(e devices.Event) (Reason, string) { return eventReason(m.ram, e) }

// eventReason maps a guest request to an exit reason. A reset is a crash when
// the guest asked for a warm reboot: only a panic does (see biosResetFlag).
func eventReason(ram guestWords, e devices.Event) (Reason, string) {
	switch e {
	case devices.PowerOff:
		return PoweredOff, "guest powered off"
	case devices.Crash:
		return Crashed, "guest reported a crash"
	case devices.Reset:
		if flag, err := ram.ReadUint16(biosResetFlag); err == nil && flag == warmReboot {
			return Crashed, "guest kernel panicked (it asked for a warm reboot; see reboot=panic_warm)"
		}
		return Rebooted, "guest reset"
	}
	return Crashed, fmt.Sprintf("unknown guest event %d", e)
}
