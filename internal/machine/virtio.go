package machine

import (
	"errors"
	"fmt"

	"github.com/govmm/govmm/devices/virtio"
)

// firstPCISlot is the first device number a PCI device gets: 0 is the host
// bridge.
const firstPCISlot = 1

// addVirtioDevice puts dev on the next free PCI slot behind a virtio-pci
// transport: BAR 0 from the PCI window, one MSI-X vector per queue plus one
// for configuration changes, and INTA# as the fallback for a driver without
// MSI-X.
func (m *Machine) addVirtioDevice(dev virtio.Device) (*virtio.PCI, error) {
	slot := m.nextSlot
	if slot >= 32 {
		return nil, fmt.Errorf("add virtio device type %d: all 31 PCI slots are taken", dev.Type())
	}
	addr, err := m.bars.alloc(virtio.BARSize)
	if err != nil {
		return nil, err
	}
	vectors, err := m.msi.Vectors(len(dev.QueueMaxSizes()) + 1)
	if err != nil {
		return nil, err
	}
	const inta = 0
	line, gsi := m.intxLine(slot, inta)
	t, err := virtio.NewPCI(dev, m.ram, virtio.PCIConfig{BARAddr: addr, MSI: vectors, INTx: line, INTxPin: inta + 1, INTxLine: uint8(gsi)})
	if err != nil {
		return nil, err
	}
	if err := m.addPCIDevice(slot, t); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	m.nextSlot = slot + 1
	return t, nil
}
