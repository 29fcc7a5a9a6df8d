package machine

import "github.com/govmm/govmm/memory"

// The machine's fixed layout. Every address, port and interrupt line a device
// uses is chosen here and handed to its constructor.
const (
	// KVM needs three pages for the real-mode TSS and one for the identity
	// map on Intel hosts; they sit just below the top of the 32-bit hole,
	// where no RAM or device is.
	tssAddr         = 0xfffbd000
	identityMapAddr = 0xfffbc000

	lapicAddr  = 0xfee00000
	ioapicAddr = 0xfec00000

	// acpiTablesAddr is in the reserved BIOS area, where Linux scans for the RSDP.
	acpiTablesAddr memory.GuestAddress = 0xe0000

	com1Port = 0x3f8
	com1Size = 8
	com1IRQ  = 4

	i8042DataPort    = 0x60
	i8042CommandPort = 0x64

	cmosPort = 0x70
	cmosSize = 2
	rtcIRQ   = 8

	// ACPI hardware-reduced sleep control, sleep status and reset registers.
	acpiPMPort       = 0x600
	acpiPMSize       = 3
	acpiSleepControl = acpiPMPort
	acpiSleepStatus  = acpiPMPort + 1
	acpiReset        = acpiPMPort + 2
	acpiResetValue   = 1

	// biosResetFlag is the BIOS data area word Linux writes before it resets
	// the machine: 0x1234 asks for a warm reboot. With reboot=panic_warm on
	// the command line only a panic asks for one, which is how govmm tells a
	// crash from a reboot.
	biosResetFlag memory.GuestAddress = 0x472
	warmReboot                        = 0x1234

	// PCI: configuration mechanism #1 at the PC's fixed ports, and the
	// 32-bit window BARs are allocated from: the device hole up to the I/O
	// APIC, which with the local APICs and KVM's pages fills the rest.
	pciConfigPort = 0xcf8
	pciMMIOStart  = uint64(memory.DeviceHoleStart)
	pciMMIOEnd    = ioapicAddr

	// INTx of PCI device n is wired to GSI pciINTxGSIBase + (n+pin)%pciINTxGSIs:
	// the I/O APIC inputs above the ISA IRQs, level-triggered and shared,
	// and described by the DSDT's _PRT.
	pciINTxGSIBase = 16
	pciINTxGSIs    = 8

	// firstMSIGSI is the first GSI past the I/O APIC's 24 inputs: each
	// MSI-X vector gets its own GSI from here up.
	firstMSIGSI = 24

	// MaxCPUs is what 8-bit xAPIC IDs in the MADT can number.
	MaxCPUs = 255
)

// MSRs set on every vCPU (Intel SDM vol. 4).
const (
	msrMiscEnable       = 0x1a0
	miscEnableFastStr   = 1 << 0
	msrMTRRDefType      = 0x2ff
	mtrrEnableWriteBack = 1<<11 | 6 // MTRRs on, default type write-back
)
