package hostile

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/govmm/govmm/guest/report"
)

// raceTime is how long the racing drivers run; with two vCPUs their
// accesses reach govmm from two threads at once.
const raceTime = 2 * time.Second

// raceCase has one thread bring t's device up, publish a request, kick and
// reset it again and again, while another rewrites its queue registers,
// kicks every queue and reads its ISR. Afterwards the device must serve a
// request as if nothing had happened.
func raceCase(t target) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		d := t.dev(e)
		v, err := e.startWithRequest(t)
		if err != nil {
			return nil, err
		}
		stop := time.Now().Add(raceTime)
		var wg sync.WaitGroup
		var cycles, pokes int
		var upErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for ; time.Now().Before(stop) && upErr == nil; cycles++ {
				upErr = e.restart(v)
			}
		}()
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for ; time.Now().Before(stop); pokes++ {
				e.poke(d, pokes)
			}
		}()
		wg.Wait()
		fields := []report.Field{kv("cycles", cycles), kv("pokes", pokes)}
		if upErr != nil {
			return fields, fmt.Errorf("after %d cycles: %w", cycles, upErr)
		}
		after, err := e.onQueue(t, func(e *env, v *vq) error {
			_, err := e.fillValid(t, v, 1)
			return err
		})
		fields = append(fields, after...)
		if err == nil && after[2].Value != "1" {
			err = fmt.Errorf("the device did not serve a request after the race: %v", after)
		}
		return fields, err
	}
}

// restart resets v's device and brings it up with v's first chain
// published again, on rings as good as new.
func (e *env) restart(v *vq) error {
	d := v.d
	if err := d.reset(); err != nil {
		return err
	}
	d.setStatus(stAck | stDriver)
	d.wr(d.common+regDrvFeatureSel, 4, 1)
	d.wr(d.common+regDrvFeature, 4, 1) // VERSION_1
	d.setStatus(stAck | stDriver | stFeaturesOK)
	v.program()
	d.driverOK()
	v.push(0)
	v.kick()
	return nil
}

// poke is the other thread's i-th access: anything but the status.
func (e *env) poke(d *dev, i int) {
	q := i % 3
	d.selectQueue(q)
	switch i % 6 {
	case 0:
		d.wr(d.common+regQueueSize, 2, uint64(i))
	case 1:
		d.wr(d.common+regQueueEnable, 2, uint64(i&1))
	case 2:
		// Outside RAM: a table in the guest's own memory would hand the
		// device buffers the guest never meant to give.
		d.wr(d.common+regQueueDesc, 8, outsideRAM+uint64(i)<<12)
	case 3:
		d.wr(d.notify+q*d.notifyMul, 2, uint64(q))
	case 4:
		_ = d.rd(d.isr, 1)
	default:
		d.wr(d.common+regQueueVector, 2, uint64(i))
	}
}
