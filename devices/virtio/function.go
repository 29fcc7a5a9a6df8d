package virtio

import "github.com/govmm/govmm/devices/pci"

// Type 0 header registers the transport watches (PCI 3.0 §6.2).
const (
	pciCommand      = 0x04
	pciStatus       = 0x06
	statusInterrupt = 1 << 3 // Interrupt Status: the function's INTx is asserted
	pciConfigSize   = 256
)

// configFunction is the configuration space as the guest sees it: the
// pci.ConfigSpace, plus the side effects of the registers the transport
// owns — MSI-X Message Control, INTx Disable and Interrupt Status, and the
// VIRTIO_PCI_CAP_PCI_CFG window into BAR 0.
type configFunction struct{ t *PCI }

// configAccess says whether the guest's access is one the configuration
// space serves: 1, 2 or 4 bytes inside one dword.
func configAccess(reg uint16, n int) bool {
	return (n == 1 || n == 2 || n == 4) && int(reg)+n <= pciConfigSize && int(reg&3)+n <= 4
}

// overlaps says whether [reg, reg+n) meets [start, start+size).
func overlaps(reg uint16, n int, start, size uint16) bool {
	return int(reg) < int(start)+int(size) && int(start) < int(reg)+n
}

func (f configFunction) ReadConfig(reg uint16, data []byte) {
	t := f.t
	t.cs.ReadConfig(reg, data)
	if !configAccess(reg, len(data)) {
		return
	}
	if overlaps(reg, len(data), pciStatus, 1) && t.intxPending() {
		data[pciStatus-reg] |= statusInterrupt
	}
	if win := t.caps.pciCfg + capData; overlaps(reg, len(data), win, 4) {
		t.pciCfgRead(reg-win, data)
	}
}

func (f configFunction) WriteConfig(reg uint16, data []byte) {
	t := f.t
	t.cs.WriteConfig(reg, data)
	if !configAccess(reg, len(data)) {
		return
	}
	if overlaps(reg, len(data), pciCommand, 2) {
		t.setINTxDisabled(t.cs.Command()&pci.CommandINTxDisable != 0)
	}
	if ctl := t.caps.msix + msixControl; t.caps.msix != 0 && overlaps(reg, len(data), ctl, 2) {
		var b [2]byte
		t.cs.ReadConfig(ctl, b[:])
		t.setMSIXControl(le.Uint16(b[:]))
	}
	if win := t.caps.pciCfg + capData; reg == win {
		t.pciCfgWrite(data)
	}
}

// pciCfgWindow decodes the bar, offset and length the driver set in the
// VIRTIO_PCI_CAP_PCI_CFG capability; ok is false unless they name a naturally
// aligned 1-, 2- or 4-byte access inside BAR 0 (virtio 1.2 §4.1.4.9.1).
func (t *PCI) pciCfgWindow() (off uint64, n int, ok bool) {
	var b [4]byte
	t.cs.ReadConfig(t.caps.pciCfg+capBar, b[:1])
	bar := b[0]
	t.cs.ReadConfig(t.caps.pciCfg+capOffset, b[:])
	off = uint64(le.Uint32(b[:]))
	t.cs.ReadConfig(t.caps.pciCfg+capLength, b[:])
	length := le.Uint32(b[:])
	if bar != 0 || (length != 1 && length != 2 && length != 4) || off%uint64(length) != 0 || off+uint64(length) > BARSize {
		return 0, 0, false
	}
	return off, int(length), true
}

// pciCfgRead serves a read of pci_cfg_data at byte pos of the window with
// the BAR 0 access the window names.
func (t *PCI) pciCfgRead(pos uint16, data []byte) {
	clear(data)
	off, n, ok := t.pciCfgWindow()
	if !ok {
		return
	}
	var buf [4]byte
	bar0{t}.Read(off, buf[:n])
	copy(data, buf[pos:])
}

// pciCfgWrite serves a write of pci_cfg_data: its first length bytes go to
// BAR 0 at the window's offset.
func (t *PCI) pciCfgWrite(data []byte) {
	off, n, ok := t.pciCfgWindow()
	if !ok || len(data) < n {
		return
	}
	bar0{t}.Write(off, data[:n])
}
