package hostile

import (
	"fmt"
	"time"

	"github.com/govmm/govmm/guest/report"
)

// queueSizeCase programs the spare disk's queue 0 with size, enables it,
// publishes a request and kicks.
func queueSizeCase(size int) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		return e.misprogram(func(v *vq) { v.size = size })
	}
}

// misprogram sets up the spare disk's queue 0 after bend changed what the
// driver tells the device, then starts it and offers one chain.
func (e *env) misprogram(bend func(v *vq)) ([]report.Field, error) {
	d := e.blk
	e.m.reset()
	if _, err := d.negotiate(0); err != nil {
		return nil, err
	}
	v := &vq{d: d, q: 0, size: min(d.queueMax(0), 256)}
	var err error
	for _, p := range []*page{&v.desc, &v.avail, &v.used} {
		if *p, err = e.m.page(); err != nil {
			return nil, err
		}
	}
	bend(v)
	v.program()
	d.selectQueue(0)
	fields := []report.Field{kv("size_read", d.rd(d.common+regQueueSize, 2)), kv("enable_read", d.rd(d.common+regQueueEnable, 2))}
	d.driverOK()
	if v.size > 0 {
		if err := e.blkRequest(v, blkIn, 0, 512); err != nil {
			return nil, err
		}
	}
	v.kick()
	v.waitUsed(v.availIdx, usedWait)
	fields = append(fields, kv("status", fmt.Sprintf("%#x", d.status())))
	return fields, d.reset()
}

// queueAddrCase gives queue 0 a descriptor table where the device must
// refuse it.
func queueAddrCase(desc func(v *vq) uint64) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		return e.misprogram(func(v *vq) { v.desc.phys = desc(v) })
	}
}

// addrChangeCase moves a running queue's rings (the driver must not,
// virtio 1.2 §4.1.4.3.2), then uses it again.
func addrChangeCase(t target) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		return e.onQueue(t, func(e *env, v *vq) error {
			buf, err := buffer(e.m)
			v.setDesc(0, buf, 64, t.w, 0)
			v.push(0)
			v.kick()
			d := v.d
			d.selectQueue(v.q)
			d.wr(d.common+regQueueDesc, 8, outsideRAM)
			d.wr(d.common+regQueueDriver, 8, lapicBase)
			d.wr(d.common+regQueueDevice, 4, 1)
			d.wr(d.common+regQueueSize, 2, 3)
			d.wr(d.common+regQueueEnable, 2, 0)
			d.wr(d.common+regQueueEnable, 2, 1)
			v.push(0)
			return err
		})
	}
}

// statusOrderCase writes DRIVER_OK without FEATURES_OK, then uses a queue.
func statusOrderCase(e *env) ([]report.Field, error) {
	d := e.blk
	e.m.reset()
	if err := d.reset(); err != nil {
		return nil, err
	}
	d.setStatus(stAck | stDriver | stDriverOK)
	v, err := d.setupQueue(e.m, 0, min(d.queueMax(0), 256))
	if err != nil {
		return nil, err
	}
	if err := e.blkRequest(v, blkIn, 0, 512); err != nil {
		return nil, err
	}
	v.kick()
	v.waitUsed(v.availIdx, usedWait)
	d.setStatus(stFeaturesOK) // and take flags back
	return []report.Field{kv("status", fmt.Sprintf("%#x", d.status())), kv("used", v.usedIdx())}, d.reset()
}

// featuresAfterCase changes the features after DRIVER_OK, and sets
// FEATURES_OK again, while a request is in flight.
func featuresAfterCase(e *env) ([]report.Field, error) {
	return e.onQueue(targets[1], func(e *env, v *vq) error {
		d := v.d
		if err := e.blkRequest(v, blkIn, 0, 4096); err != nil {
			return err
		}
		for sel := uint64(0); sel < 4; sel++ {
			d.wr(d.common+regDrvFeatureSel, 4, sel)
			d.wr(d.common+regDrvFeature, 4, 0xffffffff)
			d.wr(d.common+regDevFeatureSel, 4, sel)
		}
		d.wr(d.common+regDrvFeatureSel, 4, 0xffffffff)
		d.wr(d.common+regDrvFeature, 4, 0)
		d.setStatus(stAck | stDriver | stFeaturesOK | stDriverOK)
		return nil
	})
}

// resetMidIOCase fills t's queue with valid requests, kicks and resets at
// once; then it checks that the device wrote nothing into the buffers
// after its reset read back as done.
func resetMidIOCase(t target) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		d := t.dev(e)
		v, err := e.startQueue(d, t.q)
		if err != nil {
			return nil, err
		}
		bufs, err := e.fillValid(t, v, 16)
		if err != nil {
			return nil, err
		}
		v.kick()
		if err := d.reset(); err != nil {
			return nil, err
		}
		used := v.usedIdx()
		for _, b := range bufs {
			clear(b.b)
		}
		time.Sleep(200 * time.Millisecond)
		for _, b := range bufs {
			for _, x := range b.b {
				if x != 0 {
					return nil, fmt.Errorf("the device wrote a buffer at %#x after its reset completed", b.phys)
				}
			}
		}
		return []report.Field{kv("used_before_reset", used), kv("requests", len(bufs))}, nil
	}
}

// fillValid publishes n valid requests on v, each with a page of data,
// and returns the data pages.
func (e *env) fillValid(t target, v *vq, n int) ([]page, error) {
	var bufs []page
	for i := 0; i < n; i++ {
		p, err := e.m.page()
		if err != nil {
			return nil, err
		}
		bufs = append(bufs, p)
		switch t.name {
		case "blk":
			err = e.blkRequestAt(v, 3*i, blkIn, uint64(i*8), p)
		case "net":
			err = netFrame(v, 2*i, p, 60)
		case "console":
			// Output reaches govmm's stdout with the guest's reports:
			// an empty line, not a stray character, in the middle of one.
			p.b[0] = '\n'
			v.setDesc(i, p.phys, 1, 0, 0)
			v.push(uint16(i))
		default:
			v.setDesc(i, p.phys, pageSize, fWrite, 0)
			v.push(uint16(i))
		}
		if err != nil {
			return nil, err
		}
	}
	return bufs, nil
}

// resetStormCase resets t's device n times, each time after bringing it
// up with a request queued.
func resetStormCase(t target, n int) func(e *env) ([]report.Field, error) {
	return func(e *env) ([]report.Field, error) {
		v, err := e.startWithRequest(t)
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			if err := e.restart(v); err != nil {
				return nil, fmt.Errorf("reset %d: %w", i, err)
			}
		}
		return []report.Field{kv("resets", n)}, v.d.reset()
	}
}

// startWithRequest brings t's device up with one valid request published.
func (e *env) startWithRequest(t target) (*vq, error) {
	v, err := e.startQueue(t.dev(e), t.q)
	if err != nil {
		return nil, err
	}
	_, err = e.fillValid(t, v, 1)
	return v, err
}

// kickStormCase notifies every queue index, enabled or not, n times, and
// writes every width at every notify offset.
func kickStormCase(e *env) ([]report.Field, error) {
	for _, d := range []*dev{e.rng, e.blk, e.net, e.con} {
		if err := d.reset(); err != nil {
			return nil, err
		}
		for i := 0; i < 2000; i++ {
			d.wr(d.notify+(i%4)*d.notifyMul, 2, uint64(i))
		}
		for off := 0; off < 64; off++ {
			for _, n := range []int{1, 2, 4, 8} {
				d.wr(d.notify+off, n, 0xffffffffffffffff)
			}
		}
	}
	return nil, nil
}

// selectCase selects queue indexes that do not exist and programs them.
func selectCase(e *env) ([]report.Field, error) {
	d := e.net
	if _, err := d.negotiate(0); err != nil {
		return nil, err
	}
	for _, q := range []uint64{2, 3, 0x7fff, 0xffff} {
		d.wr(d.common+regQueueSelect, 2, q)
		d.wr(d.common+regQueueSize, 2, 16)
		d.wr(d.common+regQueueDesc, 8, 0x1000)
		d.wr(d.common+regQueueEnable, 2, 1)
		d.wr(d.common+regQueueVector, 2, 0)
		_ = d.rd(d.common+regQueueNotify, 2)
	}
	d.driverOK()
	for q := 0; q < 8; q++ {
		d.wr(d.notify+q*d.notifyMul, 2, uint64(q))
	}
	return []report.Field{kv("status", fmt.Sprintf("%#x", d.status()))}, d.reset()
}
