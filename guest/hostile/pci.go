package hostile

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	sysPCI       = "/sys/bus/pci/devices"
	virtioVendor = 0x1af4

	// Modern virtio PCI device IDs are 0x1040 + the virtio device type
	// (virtio 1.2 §4.1.2.1).
	idNet     = 0x1041
	idBlk     = 0x1042
	idConsole = 0x1043
	idRNG     = 0x1044

	// Type 0 header registers (PCI 3.0 §6.1).
	regCommand = 0x04
	regBAR0    = 0x10
	regCapPtr  = 0x34

	cmdMemory      = 1 << 1
	cmdBusMaster   = 1 << 2
	cmdINTxDisable = 1 << 10
)

// fn is one PCI function as sysfs shows it.
type fn struct {
	name                string // 0000:00:03.0
	dir                 string
	device              uint16
	bus, slot, function uint8
}

// functions lists the PCI functions of vendor.
func functions(vendor uint16) ([]fn, error) {
	dirs, err := filepath.Glob(filepath.Join(sysPCI, "*"))
	if err != nil {
		return nil, err
	}
	var out []fn
	for _, d := range dirs {
		if sysHex(filepath.Join(d, "vendor")) != uint64(vendor) {
			continue
		}
		f := fn{name: filepath.Base(d), dir: d, device: uint16(sysHex(filepath.Join(d, "device")))}
		var dom, bus, slot, function uint64
		if _, err := fmt.Sscanf(f.name, "%x:%x:%x.%x", &dom, &bus, &slot, &function); err != nil {
			return nil, fmt.Errorf("PCI address %q: %w", f.name, err)
		}
		f.bus, f.slot, f.function = uint8(bus), uint8(slot), uint8(function)
		out = append(out, f)
	}
	return out, nil
}

func sysHex(path string) uint64 {
	b, _ := os.ReadFile(path)
	v, _ := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 64)
	return v
}

// owns says whether f's virtio device shows a child named child under
// class (block/vdb, net/eth1).
func (f fn) owns(class, child string) bool {
	m, _ := filepath.Glob(filepath.Join(f.dir, "virtio*", class, child))
	return len(m) > 0
}

// unbind takes f from its kernel driver, if it has one.
func (f fn) unbind() error {
	if _, err := os.Stat(filepath.Join(f.dir, "driver")); err != nil {
		return nil
	}
	if err := os.WriteFile(filepath.Join(f.dir, "driver", "unbind"), []byte(f.name), 0); err != nil {
		return fmt.Errorf("unbind %s: %w", f.name, err)
	}
	return nil
}

// cfgRead and cfgWrite go through sysfs, which takes the kernel's PCI
// lock: an aligned access of 1, 2 or 4 bytes reaches the device as one.
func (f fn) cfgRead(off, n int) (uint32, error) {
	b := make([]byte, 4)
	file, err := os.Open(filepath.Join(f.dir, "config"))
	if err != nil {
		return 0, err
	}
	defer file.Close()
	if _, err := file.ReadAt(b[:n], int64(off)); err != nil {
		return 0, fmt.Errorf("%s config read %d@%#x: %w", f.name, n, off, err)
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (f fn) cfgWrite(off, n int, v uint32) error {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	file, err := os.OpenFile(filepath.Join(f.dir, "config"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer file.Close()
	if _, err := file.WriteAt(b[:n], int64(off)); err != nil {
		return fmt.Errorf("%s config write %d@%#x: %w", f.name, n, off, err)
	}
	return nil
}

// cfgAddr is f's CONFIG_ADDRESS for register reg (PCI 3.0 §3.2.2.3.2).
func (f fn) cfgAddr(reg int) uint32 {
	return 1<<31 | uint32(f.bus)<<16 | uint32(f.slot)<<11 | uint32(f.function)<<8 | uint32(reg&0xfc)
}
