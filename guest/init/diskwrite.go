package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/govmm/govmm/guest/pattern"
)

// diskWriteCheck (diskwrite=DEV:SEED:MIB) writes the first MIB MiB of the
// pattern stream for SEED (package pattern) at offset 0 of the device and
// fsyncs: a PASS line means the device acknowledged the flush, so the host
// may kill govmm and expect every byte in the image.
type diskWriteCheck struct {
	dev       string
	seed, mib uint64
}

func parseDiskWrite(arg string) (diskWriteCheck, error) {
	p, err := splitArgs(arg, "DEV", "SEED", "MIB")
	if err != nil {
		return diskWriteCheck{}, err
	}
	var c diskWriteCheck
	if c.dev, err = parseDevice(p[0]); err != nil {
		return c, err
	}
	if c.seed, err = parseUint("SEED", p[1]); err != nil {
		return c, err
	}
	c.mib, err = parseMiB(p[2])
	return c, err
}

func (c diskWriteCheck) run() result {
	if err := waitFor(c.dev, deviceWait); err != nil {
		return failed(err)
	}
	f, err := os.OpenFile(c.dev, os.O_WRONLY, 0)
	if err != nil {
		return failed(err)
	}
	defer f.Close()
	n := c.mib << 20
	if size, err := f.Seek(0, io.SeekEnd); err != nil || uint64(size) < n {
		return failed(fmt.Errorf("%s holds %d bytes, fewer than %d MiB (seek: %v)", c.dev, size, c.mib, err))
	}
	start := time.Now()
	buf := make([]byte, 1<<20)
	for off := uint64(0); off < n; off += uint64(len(buf)) {
		pattern.Fill(buf, c.seed, off)
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			return failed(err, kv("written", off))
		}
	}
	if err := f.Sync(); err != nil {
		return failed(fmt.Errorf("fsync %s: %w", c.dev, err), kv("written", n), kv("synced", false))
	}
	return pass(kv("bytes", n), kv("seed", c.seed), kv("synced", true), kv("mib_s", mibPerSecond(n, time.Since(start))))
}
