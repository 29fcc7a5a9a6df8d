package main

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

const hvcPath = "/dev/hvc0"

// checkHVC passes when virtio-console's first port, hvc0, exists and takes
// a marker line: "GOVMM-CHECK hvc-marker PASS via=/dev/hvc0", a check line of
// its own so that the host finds it with report.Scan in whatever carries
// hvc0. The console field names the kernel's active consoles.
func checkHVC() result {
	console := kv("console", readTrimmed("/sys/class/tty/console/active"))
	if err := waitFor(hvcPath, deviceWait); err != nil {
		return failed(err, kv("exists", false), console)
	}
	marker := report.Check{Name: "hvc-marker", OK: true, Detail: report.FormatFields(kv("via", hvcPath))}
	line := []byte(marker.Line() + "\n")
	err := withTimeout(10*time.Second, "write "+hvcPath, func() error {
		// O_NOCTTY: PID 1 must not take hvc0 as its controlling terminal.
		f, err := os.OpenFile(hvcPath, os.O_WRONLY|unix.O_NOCTTY, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(line)
		return errors.Join(err, f.Close())
	})
	if err != nil {
		return failed(err, kv("exists", true), console)
	}
	return pass(kv("exists", true), kv("wrote", len(line)), console)
}
