// Package hostile is a malicious virtio driver run from the test guest's
// init: it takes spare virtio-pci devices from their kernel drivers and
// feeds them what a broken or hostile guest could (looping and
// out-of-RAM descriptor chains, impossible queue sizes, status and
// feature misorder, resets mid-I/O, MSI-X and BAR abuse, config space and
// port sweeps). Each case is judged by the host: govmm must stay up and
// bounded, and the guest proves its own devices still work after every
// case (Run's health function).
package hostile

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/govmm/govmm/guest/report"
)

// Spares names what the cases may own: a disk and a NIC the kernel found,
// besides the virtio-rng every govmm guest has and the virtio-console
// (govmm run --console virtio) while the guest's console is ttyS0.
type Spares struct {
	Disk, NIC string // vdb, eth1
}

// env is what the cases share.
type env struct {
	m                  *dma
	rng, blk, net, con *dev
	all                []fn   // every virtio function, the health devices too
	healthBAR          uint64 // BAR 0 of a device the guest still uses
	nextSector         uint64
}

type kase struct {
	name string
	run  func(e *env) ([]report.Field, error)
}

func kv(key string, value any) report.Field { return report.Field{Key: key, Value: fmt.Sprint(value)} }

// Names lists the cases, for a host to know what to expect.
func Names() []string {
	var out []string
	for _, c := range cases() {
		out = append(out, c.name)
	}
	return out
}

// Run runs the cases sel names ("all", one case, or a prefix ending in
// "*"), printing each case's line with the fields health adds after it.
// It returns how many cases ran and failed.
func Run(sel string, spares Spares, health func() ([]report.Field, error), print func(report.Check)) (ran, failed int, err error) {
	e, err := setUp(spares)
	if err != nil {
		return 0, 0, err
	}
	defer e.m.close()
	for _, c := range cases() {
		if !selected(sel, c.name) {
			continue
		}
		ran++
		start := time.Now()
		fields, err := c.run(e)
		fields = append(fields, kv("ms", time.Since(start).Milliseconds()))
		ok := err == nil
		if err != nil {
			fields = append(fields, kv("error", err))
		}
		h, herr := health()
		fields = append(fields, h...)
		if herr != nil {
			ok = false
			fields = append(fields, kv("health_error", herr))
		}
		if !ok {
			failed++
		}
		print(report.Check{Name: "hostile:" + c.name, OK: ok, Detail: report.FormatFields(fields...)})
	}
	if ran == 0 {
		return 0, 0, fmt.Errorf("no case matches %q", sel)
	}
	return ran, failed, nil
}

func selected(sel, name string) bool {
	if p, ok := strings.CutSuffix(sel, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return sel == "all" || sel == name
}

// setUp finds and takes the spare devices.
func setUp(s Spares) (*env, error) {
	fns, err := functions(virtioVendor)
	if err != nil {
		return nil, err
	}
	e := &env{all: fns}
	var rng, blk, net, con *fn
	for i := range fns {
		f := &fns[i]
		switch {
		case f.device == idRNG && rng == nil:
			rng = f
		case f.device == idConsole && con == nil:
			con = f
		case f.device == idBlk && f.owns("block", s.Disk):
			blk = f
		case f.device == idNet && f.owns("net", s.NIC):
			net = f
		case f.device == idBlk && e.healthBAR == 0:
			e.healthBAR = barOf(*f)
		}
	}
	if rng == nil || con == nil || blk == nil || net == nil || e.healthBAR == 0 {
		return nil, fmt.Errorf("want a virtio-rng, a virtio-console, the spare disk %s, the spare NIC %s and another disk: found rng %v, console %v, disk %v, NIC %v, other disk BAR %#x",
			s.Disk, s.NIC, rng != nil, con != nil, blk != nil, net != nil, e.healthBAR)
	}
	var errs []error
	for _, p := range []struct {
		f *fn
		d **dev
	}{{rng, &e.rng}, {blk, &e.blk}, {net, &e.net}, {con, &e.con}} {
		var err error
		*p.d, err = open(*p.f)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e.m, err = newDMA(128)
	return e, err
}

func barOf(f fn) uint64 {
	lo, _ := f.cfgRead(regBAR0, 4)
	return uint64(lo &^ 0xf)
}
