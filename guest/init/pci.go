package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/govmm/govmm/guest/report"
)

// pciDevices is where the kernel lists the PCI functions it enumerated.
const pciDevices = "/sys/bus/pci/devices"

// checkPCI lists every PCI function the kernel found, one field each: the
// address with _ for its separators, and vendor,device,class from sysfs
// (e.g. 0000_00_00_0=0x8086,0x0d57,0x060000). It passes if there is one.
func checkPCI() result {
	dirs, err := filepath.Glob(filepath.Join(pciDevices, "*"))
	if err != nil {
		return failed(err)
	}
	if len(dirs) == 0 {
		return failed(fmt.Errorf("no PCI functions in %s", pciDevices))
	}
	fields := []report.Field{kv("count", len(dirs))}
	for _, d := range dirs {
		key := strings.NewReplacer(":", "_", ".", "_").Replace(filepath.Base(d))
		id := []string{readTrimmed(filepath.Join(d, "vendor")), readTrimmed(filepath.Join(d, "device")), readTrimmed(filepath.Join(d, "class"))}
		fields = append(fields, kv(key, strings.Join(id, ",")))
	}
	return pass(fields...)
}
