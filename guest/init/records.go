package main

import (
	"fmt"

	"github.com/govmm/govmm/guest/pattern"
)

// recordSize is the size of one record of the records check: one page, so
// the guest's page cache writes each record whole, without reading first.
const recordSize = 4096

// maxRecords bounds the records check to 4 MiB of writes.
const maxRecords = 1024

// recordsCheck (records=DEV:SEED:N) writes N records one after another,
// record i being bytes [i*4096, (i+1)*4096) of the pattern stream for SEED
// at the same offset of the device, and fsyncs after each: every fsync is
// a flush the device must acknowledge only once the record is durable. The
// report's acknowledged field counts the records whose fsync returned, so
// the host may cut the power and expect each of them in the image.
type recordsCheck struct {
	dev     string
	seed, n uint64
}

func parseRecords(arg string) (recordsCheck, error) {
	dev, seed, n, err := parseDevSeed(arg, "N")
	if err != nil {
		return recordsCheck{}, err
	}
	c := recordsCheck{dev: dev, seed: seed}
	if c.n, err = parseUint("N", n); err == nil && (c.n == 0 || c.n > maxRecords) {
		err = fmt.Errorf("N %d: want 1 to %d records", c.n, maxRecords)
	}
	return c, err
}

func (c recordsCheck) run() result {
	f, err := openForWriting(c.dev, c.n*recordSize)
	if err != nil {
		return failed(err, kv("acknowledged", 0))
	}
	defer f.Close()
	buf := make([]byte, recordSize)
	for i := uint64(0); i < c.n; i++ {
		off := i * recordSize
		pattern.Fill(buf, c.seed, off)
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			return failed(fmt.Errorf("write record %d: %w", i, err), kv("acknowledged", i))
		}
		if err := f.Sync(); err != nil {
			return failed(fmt.Errorf("fsync record %d: %w", i, err), kv("acknowledged", i))
		}
	}
	return pass(kv("acknowledged", c.n), kv("seed", c.seed), kv("record_bytes", recordSize))
}
