package main

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// checkRandom asks for random bytes without blocking.
func checkRandom() result {
	b := make([]byte, 16)
	n, err := unix.Getrandom(b, unix.GRND_NONBLOCK)
	entropy := kv("entropy_avail", readTrimmed("/proc/sys/kernel/random/entropy_avail"))
	if err != nil {
		return failed(fmt.Errorf("getrandom: %w", err), entropy)
	}
	return result{ok: n == len(b), fields: []report.Field{kv("bytes", n), entropy}}
}
