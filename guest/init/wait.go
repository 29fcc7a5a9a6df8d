package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// deviceWait is how long a check waits for a device node or interface: a
// driver may finish probing after its module loaded, and the sandbox runs
// guests 20–50× slower than hardware.
const deviceWait = 10 * time.Second

// waitFor polls until path exists or timeout passes.
func waitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v: %w", path, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withTimeout runs f, giving up after d: a device that never answers must
// not hang init. f keeps running in the background then.
func withTimeout(d time.Duration, what string, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("%s: no answer within %v", what, d)
	}
}

// blockAttr reads a sysfs attribute of a block device, "" if absent.
func blockAttr(dev, attr string) string {
	return readTrimmed(filepath.Join("/sys/class/block", filepath.Base(dev), attr))
}

// mibPerSecond formats a throughput for the report.
func mibPerSecond(bytes uint64, d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(bytes)/(1<<20)/max(d.Seconds(), 1e-9))
}
