package machine

import "github.com/govmm/govmm/devices"

// pciINTxGSI is the GSI that INTx pin (0 = INTA#) of PCI device dev is wired
// to, as the DSDT's _PRT tells the guest: the usual swizzle, so functions
// that use INTA# spread over all eight lines.
func pciINTxGSI(dev, pin uint8) uint32 {
	return pciINTxGSIBase + (uint32(dev)+uint32(pin))%pciINTxGSIs
}

// intxLine returns the line for INTx pin (0 = INTA#) of PCI device dev and
// its GSI, which the function shows in its Interrupt Line register. Wiring
// calls it from New only.
func (m *Machine) intxLine(dev, pin uint8) (devices.IRQLine, uint32) {
	gsi := pciINTxGSI(dev, pin)
	return m.intx.Pin(gsi, dev), gsi
}
