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
	dev, seed, mib, err := parseDevSeed(arg, "MIB")
	if err != nil {
		return diskWriteCheck{}, err
	}
	c := diskWriteCheck{dev: dev, seed: seed}
	c.mib, err = parseMiB(mib)
	return c, err
}

func (c diskWriteCheck) run() result {
	n := c.mib << 20
	f, err := openForWriting(c.dev, n)
	if err != nil {
		return failed(err)
	}
	defer f.Close()
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

// openForWriting waits for the block device dev and opens it for writing,
// failing unless it holds at least n bytes.
func openForWriting(dev string, n uint64) (*os.File, error) {
	if err := waitFor(dev, deviceWait); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if size, err := f.Seek(0, io.SeekEnd); err != nil || uint64(size) < n {
		f.Close()
		return nil, fmt.Errorf("%s holds %d bytes, fewer than the %d to write (seek: %v)", dev, size, n, err)
	}
	return f, nil
}
