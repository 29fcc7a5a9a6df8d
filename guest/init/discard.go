package main

import (
	"fmt"
	"os"

	"github.com/govmm/govmm/guest/report"
)

// discardCheck (discard=DEV:OFF:LEN) discards LEN bytes at byte offset OFF
// with the BLKDISCARD ioctl, which returns when the device completed it.
// OFF and LEN are multiples of 512; the kernel also wants them aligned to
// the device's logical block size. The report carries the queue's
// discard limits as the guest sees them.
type discardCheck struct {
	dev         string
	off, length uint64
}

func parseDiscard(arg string) (discardCheck, error) {
	p, err := splitArgs(arg, "DEV", "OFF", "LEN")
	if err != nil {
		return discardCheck{}, err
	}
	var c discardCheck
	if c.dev, err = parseDevice(p[0]); err != nil {
		return c, err
	}
	if c.off, err = parseUint("OFF", p[1]); err != nil {
		return c, err
	}
	if c.length, err = parseUint("LEN", p[2]); err != nil {
		return c, err
	}
	switch {
	case c.off%512 != 0 || c.length%512 != 0:
		return c, fmt.Errorf("OFF %d and LEN %d: want multiples of 512", c.off, c.length)
	case c.length == 0:
		return c, fmt.Errorf("LEN 0: want at least 512")
	case c.off+c.length < c.off:
		return c, fmt.Errorf("OFF %d + LEN %d overflows", c.off, c.length)
	}
	return c, nil
}

func (c discardCheck) run() result {
	if err := waitFor(c.dev, deviceWait); err != nil {
		return failed(err)
	}
	limits := []report.Field{kv("discard_max_bytes", blockAttr(c.dev, "queue/discard_max_bytes")),
		kv("discard_granularity", blockAttr(c.dev, "queue/discard_granularity"))}
	f, err := os.OpenFile(c.dev, os.O_WRONLY, 0)
	if err != nil {
		return failed(err, limits...)
	}
	defer f.Close()
	if err := blkDiscard(int(f.Fd()), c.off, c.length); err != nil {
		return failed(fmt.Errorf("BLKDISCARD %s [%d, +%d): %w", c.dev, c.off, c.length, err), limits...)
	}
	return pass(append([]report.Field{kv("off", c.off), kv("len", c.length)}, limits...)...)
}
