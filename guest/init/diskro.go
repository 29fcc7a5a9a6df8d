package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// diskROCheck (diskro=DEV) tries to write a read-only disk: it opens the
// device read-write, writes back its own first 4 KiB (so a disk that is
// wrongly writable keeps its data) and fsyncs. It passes when one of
// these is refused with EROFS, EIO, EPERM or EACCES; stage says which.
type diskROCheck struct{ dev string }

func parseDiskRO(arg string) (diskROCheck, error) {
	dev, err := parseDevice(arg)
	return diskROCheck{dev}, err
}

func (c diskROCheck) run() result {
	if err := waitFor(c.dev, deviceWait); err != nil {
		return failed(err)
	}
	ro := kv("ro", blockAttr(c.dev, "ro"))
	stage, err := c.tryWrite()
	if err == nil {
		return result{fields: []report.Field{kv("refused", false), ro}}
	}
	if !refusal(err) {
		return failed(err, kv("refused", false), kv("stage", stage), ro)
	}
	return pass(kv("refused", true), kv("stage", stage), kv("errno", errnoName(err)), ro)
}

// tryWrite returns the stage that failed and why, or "" and nil.
func (c diskROCheck) tryWrite() (string, error) {
	f, err := os.OpenFile(c.dev, os.O_RDWR, 0)
	if err != nil {
		return "open", err
	}
	defer f.Close()
	block := make([]byte, 4096)
	if _, err := f.ReadAt(block, 0); err != nil {
		return "read", fmt.Errorf("read %s before writing it back: %w", c.dev, err)
	}
	if _, err := f.WriteAt(block, 0); err != nil {
		return "write", err
	}
	if err := f.Sync(); err != nil {
		return "fsync", err
	}
	return "", nil
}

func refusal(err error) bool {
	for _, e := range []unix.Errno{unix.EROFS, unix.EIO, unix.EPERM, unix.EACCES} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
