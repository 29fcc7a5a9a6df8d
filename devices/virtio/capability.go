package virtio

// Virtio PCI capabilities (virtio 1.2 §4.1.4): struct virtio_pci_cap is
// {cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding[2], offset, length};
// the notify capability adds notify_off_multiplier, the PCI configuration
// access capability adds pci_cfg_data.
const (
	capIDVendor = 0x09
	capIDMSIX   = 0x11 // PCI 3.0 §6.8.2

	cfgTypeCommon = 1 // VIRTIO_PCI_CAP_COMMON_CFG
	cfgTypeNotify = 2 // VIRTIO_PCI_CAP_NOTIFY_CFG
	cfgTypeISR    = 3 // VIRTIO_PCI_CAP_ISR_CFG
	cfgTypeDevice = 4 // VIRTIO_PCI_CAP_DEVICE_CFG
	cfgTypePCI    = 5 // VIRTIO_PCI_CAP_PCI_CFG

	virtioCapLen = 16
	notifyCapLen = 20
	pciCfgCapLen = 20

	// Offsets inside virtio_pci_cap, counted from cap_vndr.
	capBar    = 4
	capOffset = 8
	capLength = 12
	capData   = 16 // pci_cfg_data in virtio_pci_cfg_cap

	// Offsets inside the MSI-X capability (PCI 3.0 §6.8.2, figure 6-10).
	msixControl = 2
	msixTable   = 4
	msixPBA     = 8
	msixCapLen  = 12
)

// capOffsets records where the capabilities the transport watches landed.
type capOffsets struct {
	pciCfg uint16 // VIRTIO_PCI_CAP_PCI_CFG
	msix   uint16 // 0 without MSI-X
}

// vendorCap is the body of a virtio_pci_cap after cap_vndr and cap_next.
func vendorCap(capLen int, cfgType uint8, offset, length uint32) []byte {
	b := make([]byte, capLen-2)
	b[0] = byte(capLen)
	b[1] = cfgType
	b[capBar-2] = 0 // everything lives in BAR 0
	le.PutUint32(b[capOffset-2:], offset)
	le.PutUint32(b[capLength-2:], length)
	return b
}

// addCapabilities builds the capability list. Linux takes the first
// capability of each cfg_type, so each appears once.
func (t *PCI) addCapabilities() error {
	notify := vendorCap(notifyCapLen, cfgTypeNotify, notifyOffset, uint32(len(t.maxSize))*notifyOffMul)
	le.PutUint32(notify[virtioCapLen-2:], notifyOffMul)
	for _, body := range [][]byte{
		vendorCap(virtioCapLen, cfgTypeCommon, commonOffset, commonLen),
		notify,
		vendorCap(virtioCapLen, cfgTypeISR, isrOffset, isrLen),
		vendorCap(virtioCapLen, cfgTypeDevice, deviceOffset, deviceLen),
	} {
		if _, err := t.cs.AddCapability(capIDVendor, body); err != nil {
			return err
		}
	}
	if err := t.addPCICfgCap(); err != nil {
		return err
	}
	if t.msi == nil {
		return nil
	}
	return t.addMSIXCap()
}

// addPCICfgCap adds the window through which a driver without a BAR mapping
// reaches BAR 0 (virtio 1.2 §4.1.4.9); its bar, offset and length fields
// are the driver's to set.
func (t *PCI) addPCICfgCap() error {
	off, err := t.cs.AddCapability(capIDVendor, vendorCap(pciCfgCapLen, cfgTypePCI, 0, 0))
	if err != nil {
		return err
	}
	t.caps.pciCfg = off
	if err := t.cs.SetWritable(off+capBar, []byte{0xff}); err != nil {
		return err
	}
	return t.cs.SetWritable(off+capOffset, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
}

// addMSIXCap adds MSI-X with its table and PBA in BAR 0 (BIR 0); only
// Function Mask and MSI-X Enable are writable.
func (t *PCI) addMSIXCap() error {
	body := make([]byte, msixCapLen-2)
	le.PutUint16(body[msixControl-2:], uint16(len(t.msix.entries)-1))
	le.PutUint32(body[msixTable-2:], msixTableOffset)
	le.PutUint32(body[msixPBA-2:], msixPBAOffset)
	off, err := t.cs.AddCapability(capIDMSIX, body)
	if err != nil {
		return err
	}
	t.caps.msix = off
	return t.cs.SetWritable(off+msixControl, []byte{0x00, byte((msixEnable | msixFunctionMask) >> 8)})
}
