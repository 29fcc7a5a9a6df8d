package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

const hwRandom = "/sys/devices/virtual/misc/hw_random/"

// checkEntropy passes when the kernel's pool is ready (getrandom does not
// block) and a hardware RNG — virtio-rng under govmm — is current and
// gives bytes through /dev/hwrng.
func checkEntropy() result {
	fields := []report.Field{
		kv("entropy_avail", readTrimmed("/proc/sys/kernel/random/entropy_avail")),
		kv("rng_current", readTrimmed(hwRandom+"rng_current")),
		kv("rng_available", readTrimmed(hwRandom+"rng_available")),
	}
	var b [16]byte
	if _, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK); err != nil {
		return failed(fmt.Errorf("getrandom(GRND_NONBLOCK): %w", err), append(fields, kv("pool_ready", false))...)
	}
	fields = append(fields, kv("pool_ready", true))
	n, err := readHWRNG(b[:])
	fields = append(fields, kv("hwrng_bytes", n))
	if err != nil {
		return failed(err, fields...)
	}
	return pass(fields...)
}

// readHWRNG reads from the current hardware RNG, which blocks until the
// device answers.
func readHWRNG(b []byte) (int, error) {
	var n int
	err := withTimeout(10*time.Second, "read /dev/hwrng", func() error {
		f, err := os.Open("/dev/hwrng")
		if err != nil {
			return err
		}
		n, err = f.Read(b)
		return errors.Join(err, f.Close())
	})
	return n, err
}
