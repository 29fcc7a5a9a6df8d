package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"time"
)

// diskCheck (disk=DEV) reads the whole device and reports its size and
// sha256, with the serial (virtio-blk GET_ID) and read-only flag the
// kernel shows in sysfs.
type diskCheck struct{ dev string }

func parseDisk(arg string) (diskCheck, error) {
	dev, err := parseDevice(arg)
	return diskCheck{dev}, err
}

func (c diskCheck) run() result {
	if err := waitFor(c.dev, deviceWait); err != nil {
		return failed(err)
	}
	f, err := os.Open(c.dev)
	if err != nil {
		return failed(err)
	}
	defer f.Close()
	start := time.Now()
	h := sha256.New()
	// Hide File.WriteTo so that CopyBuffer reads in 1 MiB requests.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, 1<<20))
	elapsed := time.Since(start)
	if err != nil {
		return failed(err, kv("size", n))
	}
	return pass(kv("size", n), kv("sha256", hex.EncodeToString(h.Sum(nil))), kv("mib_s", mibPerSecond(uint64(n), elapsed)),
		kv("serial", blockAttr(c.dev, "serial")), kv("ro", blockAttr(c.dev, "ro")))
}
