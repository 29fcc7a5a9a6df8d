package machine

import (
	"errors"
	"time"

	"github.com/govmm/govmm/boot/acpi"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/acpipm"
	"github.com/govmm/govmm/devices/cmos"
	"github.com/govmm/govmm/devices/conout"
	"github.com/govmm/govmm/devices/i8042"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/serial"
	"github.com/govmm/govmm/internal/kvmirq"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

func (m *Machine) writeACPI() (memory.GuestAddress, error) {
	return acpi.Write(m.ram, acpiTablesAddr, acpi.Config{
		CPUs:             m.cfg.CPUs,
		LAPICAddr:        lapicAddr,
		IOAPICAddr:       ioapicAddr,
		SleepControlPort: acpiSleepControl,
		SleepStatusPort:  acpiSleepStatus,
		ResetPort:        acpiReset,
		ResetValue:       acpiResetValue,
		// No 8042 flag: Linux then skips probing for a keyboard that is
		// not there; its reboot=k still resets through port 0x64.
		HasI8042: false,
		Devices: []acpi.ISADevice{
			{Name: "COM1", HID: "PNP0501", Port: com1Port, PortLen: com1Size, IRQ: com1IRQ},
			{Name: "RTC_", HID: "PNP0B00", Port: cmosPort, PortLen: cmosSize, IRQ: rtcIRQ},
		},
		PCI: &acpi.PCIRoot{MMIOBase: uint32(pciMMIOStart), MMIOSize: uint32(pciMMIOEnd - pciMMIOStart), Routes: pciRoutes()},
	})
}

// pciRoutes is the _PRT: every INTx pin of every device on bus 0 and the GSI
// intxLine wires it to.
func pciRoutes() []acpi.PCIRoute {
	var out []acpi.PCIRoute
	for dev := uint8(firstPCISlot); dev < 32; dev++ {
		for pin := uint8(0); pin < 4; pin++ {
			out = append(out, acpi.PCIRoute{Device: dev, Pin: pin, GSI: pciINTxGSI(dev, pin)})
		}
	}
	return out
}

// wireDevices builds the legacy PC devices and maps them on the buses.
func (m *Machine) wireDevices() error {
	m.buses.PIO = devices.NewBus("pio")
	m.buses.MMIO = devices.NewBus("mmio")
	// Closed after every device (closers run last to first), so that what
	// a console wrote last still reaches the host.
	m.conOut = conout.New(m.cfg.Console)
	m.closers = append(m.closers, m.conOut)
	m.serial = serial.New(kvmirq.ISALine(m.kvm, com1IRQ), m.conOut)
	kbd := i8042.New(m.guestEvent)
	regs := []struct {
		base, size uint64
		name       string
		dev        devices.Device
	}{
		{com1Port, com1Size, "serial (COM1)", m.serial},
		{i8042DataPort, 1, "i8042 data", kbd.DataPort()},
		{i8042CommandPort, 1, "i8042 command", kbd.CommandPort()},
		{cmosPort, cmosSize, "cmos", cmos.New(time.Now)},
		{acpiPMPort, acpiPMSize, "acpi pm", acpipm.New(m.guestEvent, acpiResetValue)},
	}
	for _, r := range regs {
		if err := m.buses.PIO.Register(r.base, r.size, r.name, r.dev); err != nil {
			return err
		}
	}
	if err := m.wirePCI(); err != nil {
		return err
	}
	return m.coalesceLatches()
}

// latchPorts are the index registers whose write only selects what the
// next access to the data port reaches: PCI's CONFIG_ADDRESS (0xCFC
// follows) and the CMOS index (0x71 follows). Linux writes one before
// every configuration or clock access, about 420 writes a boot; coalesced,
// KVM completes them without returning to govmm. Only the dword at 0xCF8
// latches: 0xCF9 (reset control on some chipsets) must never join this
// list while govmm implements it, since a coalesced write waits for the
// next exit that reaches govmm.
var latchPorts = []struct {
	port uint64
	size uint32
}{
	{pciConfigPort, 4},
	{cmosPort, 1},
}

// coalesceLatches has KVM keep writes to latchPorts in its coalesced ring
// instead of exiting (the vCPU loop applies them before the next exit).
// Without KVM_CAP_COALESCED_PIO every such write exits, as before.
func (m *Machine) coalesceLatches() error {
	for _, l := range latchPorts {
		err := m.kvm.RegisterCoalescedPIO(m.sys, l.port, l.size)
		var missing *kvm.CapabilityError
		if errors.As(err, &missing) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// wirePCI sets up PCI bus 0 behind configuration mechanism #1, with only the
// host bridge on it, and the allocators PCI devices draw from.
func (m *Machine) wirePCI() error {
	m.pci = pci.NewBus()
	m.nextSlot = firstPCISlot
	m.bars = barAllocator{next: pciMMIOStart, end: pciMMIOEnd}
	m.msi = kvmirq.NewMSIRouter(m.kvm, firstMSIGSI)
	m.intx = kvmirq.NewSharedLines(m.kvm)
	return m.buses.PIO.Register(pciConfigPort, pci.ConfigIOSize, "pci config (mechanism #1)", pci.NewConfigIO(m.pci))
}

// guestEvent is the devices' EventSink: the first request wins, the rest are
// dropped because the VM is already stopping.
func (m *Machine) guestEvent(e devices.Event) {
	select {
	case m.events <- e:
	default:
	}
}
