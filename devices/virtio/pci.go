package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/memory"
)

// PCI identity of a modern virtio device (virtio 1.2 §4.1.2).
const (
	pciVendor      = 0x1af4
	pciDeviceBase  = 0x1040 // + device type
	pciRevision    = 1      // modern only: no transitional device
	pciSubsystemID = 0x40   // virtio 1.2 §4.1.2.1: at least 0x40
	interruptPinA  = 1
)

// BAR 0 layout: each structure in its own page so the root may map them apart.
const (
	commonOffset    = 0x0000
	commonLen       = 0x38 // through queue_device; no notify_data or queue_reset
	isrOffset       = 0x1000
	isrLen          = 1
	deviceOffset    = 0x2000
	deviceLen       = 0x1000
	notifyOffset    = 0x3000
	notifyLen       = 0x1000
	notifyOffMul    = 4 // notify_off_multiplier: one dword per queue
	msixTableOffset = 0x4000
	msixTableLen    = 0x1000 // 256 entries of 16 bytes
	msixPBAOffset   = 0x5000
	msixPBALen      = 0x1000

	// BARSize is the size of BAR 0, which holds every virtio structure and
	// the MSI-X table and PBA.
	BARSize = 0x8000

	// maxQueues keeps one MSI-X vector per queue plus config in the table.
	maxQueues = msixTableLen/msixEntrySize - 1
)

var le = binary.LittleEndian

// ErrBadDevice is wrapped by NewPCI's errors for a device or configuration
// the transport cannot present.
var ErrBadDevice = errors.New("invalid virtio PCI device")

// PCIConfig is what the composition root chose for one virtio PCI function.
// MSI and INTx are called from vCPU and device goroutines with the
// transport's lock held, which orders them with masking and ISR reads: they
// must not block or call back into the transport.
type PCIConfig struct {
	BARAddr  uint64             // guest-physical address of BAR 0, a multiple of BARSize
	MSI      devices.MSIVectors // nil: no MSI-X capability
	INTx     devices.IRQLine    // nil: no legacy interrupt
	INTxPin  uint8              // 1–4 for INTA#–INTD#; 0 means INTA# when INTx is set
	INTxLine uint8              // the IRQ the pin is routed to, for the guest to read
	Log      *slog.Logger       // nil: slog.Default()
}

// Notification is where the driver kicks one queue: a write to Offset in
// BAR 0. The root registers Kick there as a KVM ioeventfd (length 2, no
// datamatch) so a kick does not exit to user space.
type Notification struct {
	Offset uint64
	Kick   *eventfd.EventFD
}

// PCI is the virtio 1.x modern PCI transport (virtio 1.2 §4.1) for one
// Device: configuration space with the virtio and MSI-X capabilities, and
// BAR 0 with the common, ISR, device and notify structures, MSI-X table and
// PBA. It owns the device status machine, feature negotiation and interrupt
// delivery. It is safe for concurrent use.
type PCI struct {
	dev     Device
	name    string // for errors and logs: "virtio-blk"
	mem     *memory.RAM
	msi     devices.MSIVectors
	intx    devices.IRQLine
	log     *slog.Logger
	broke   *Warner // "needs reset" lines: a driver may break, reset and break the device in a loop
	cs      *pci.ConfigSpace
	caps    capOffsets
	offered uint64
	maxSize []uint16
	kicks   []*eventfd.EventFD
	counts  []QueueCounters // one per queue, kept across resets

	// lifeMu serializes the driver's writes to the common configuration,
	// which may reset or activate the Device. It is taken before mu and
	// held while calling the Device, so device goroutines, which take only
	// mu, can still raise interrupts while the Device stops them.
	lifeMu sync.Mutex
	closed bool

	mu     sync.Mutex
	common commonState
	isr    uint8
	intxOn bool // the INTx line is high
	noINTx bool // the Command register's Interrupt Disable bit
	msix   msixState
	warned warnings
}

// NewPCI builds the transport for dev. The root registers Function() on the
// PCI bus, BAR() on the MMIO bus at BARAddr (and moves it when the guest
// relocates BAR 0) and Notifications() as ioeventfds.
func NewPCI(dev Device, mem *memory.RAM, cfg PCIConfig) (*PCI, error) {
	name := typeName(dev.Type())
	if err := checkDevice(name, dev, mem, cfg); err != nil {
		return nil, err
	}
	t := &PCI{
		dev: dev, name: name, mem: mem, msi: cfg.MSI, intx: cfg.INTx, log: cfg.Log,
		offered: dev.Features() | FeatureVersion1 | FeatureRingEventIdx | FeatureRingIndirectDesc,
		maxSize: append([]uint16(nil), dev.QueueMaxSizes()...),
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.broke = newWarnerTo(t.log, "device", name)
	t.common.queues = make([]queueState, len(t.maxSize))
	t.counts = make([]QueueCounters, len(t.maxSize))
	nvec := 0
	if t.msi != nil {
		nvec = len(t.maxSize) + 1
	}
	t.msix = newMSIX(nvec)
	t.resetLocked()
	if err := t.buildConfigSpace(cfg); err != nil {
		return nil, fmt.Errorf("%s PCI function: %w", name, err)
	}
	for range t.maxSize {
		e, err := eventfd.New()
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%s queue kick: %w", name, err), t.closeKicks())
		}
		t.kicks = append(t.kicks, e)
	}
	return t, nil
}

func checkDevice(name string, dev Device, mem *memory.RAM, cfg PCIConfig) error {
	sizes := dev.QueueMaxSizes()
	switch {
	case mem == nil:
		return fmt.Errorf("%s: no guest memory: %w", name, ErrBadDevice)
	case len(sizes) == 0 || len(sizes) > maxQueues:
		return fmt.Errorf("%s: %d queues, want 1 to %d: %w", name, len(sizes), maxQueues, ErrBadDevice)
	case cfg.MSI == nil && cfg.INTx == nil:
		return fmt.Errorf("%s: neither MSI-X nor INTx, so no interrupts: %w", name, ErrBadDevice)
	case cfg.INTxPin > 4:
		return fmt.Errorf("%s: interrupt pin %d, want 1 to 4: %w", name, cfg.INTxPin, ErrBadDevice)
	}
	for i, s := range sizes {
		if s == 0 || s > MaxQueueSize || bits.OnesCount16(s) != 1 {
			return fmt.Errorf("%s: queue %d maximum size %d is not a power of two up to %d: %w",
				name, i, s, MaxQueueSize, ErrBadDevice)
		}
	}
	return nil
}

// buildConfigSpace sets up the header, BAR 0 and the capability list.
func (t *PCI) buildConfigSpace(cfg PCIConfig) error {
	h := pci.Header{
		VendorID: pciVendor, DeviceID: pciDeviceBase + uint16(t.dev.Type()), RevisionID: pciRevision,
		ClassCode: classCode(t.dev.Type()), SubsystemVendorID: pciVendor, SubsystemID: pciSubsystemID,
	}
	if cfg.INTx != nil {
		h.InterruptPin, h.InterruptLine = cfg.INTxPin, cfg.INTxLine
		if h.InterruptPin == 0 {
			h.InterruptPin = interruptPinA
		}
	}
	t.cs = pci.NewConfigSpace(h)
	if err := t.cs.SetBAR(0, pci.BAR{Kind: pci.BARMem64, Addr: cfg.BARAddr, Size: BARSize}); err != nil {
		return err
	}
	return t.addCapabilities()
}

// typeName names a device type in errors and logs.
func typeName(typ DeviceType) string {
	switch typ {
	case TypeNet:
		return "virtio-net"
	case TypeBlock:
		return "virtio-blk"
	case TypeConsole:
		return "virtio-console"
	case TypeRNG:
		return "virtio-rng"
	}
	return fmt.Sprintf("virtio device type %d", typ)
}

// classCode is the PCI class a driver-less OS shows for each device type.
func classCode(typ DeviceType) uint32 {
	switch typ {
	case TypeNet:
		return 0x020000 // network controller, Ethernet
	case TypeBlock:
		return 0x010000 // mass storage, SCSI (as QEMU reports virtio-blk)
	case TypeConsole:
		return 0x078000 // communication controller, other
	}
	return 0x00ff00 // unclassified
}

// Function is the function's configuration space, for the root to put on
// the PCI bus.
func (t *PCI) Function() pci.Function { return configFunction{t} }

// ConfigSpace is the underlying configuration space, for the root to
// subscribe to BAR relocations.
func (t *PCI) ConfigSpace() *pci.ConfigSpace { return t.cs }

// BAR is the contents of BAR 0, for the root to register on the MMIO bus.
func (t *PCI) BAR() devices.Device { return bar0{t} }

// Notifications lists each queue's notify register and kick eventfd, by
// queue index.
func (t *PCI) Notifications() []Notification {
	out := make([]Notification, len(t.kicks))
	for i, k := range t.kicks {
		out[i] = Notification{Offset: notifyOffset + uint64(i)*notifyOffMul, Kick: k}
	}
	return out
}

// Close resets the Device and closes the kick eventfds. The root unregisters
// the ioeventfds first.
func (t *PCI) Close() error {
	t.lifeMu.Lock()
	defer t.lifeMu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.dev.Reset()
	return t.closeKicks()
}

func (t *PCI) closeKicks() error {
	var errs []error
	for i, k := range t.kicks {
		if err := k.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s queue %d kick: %w", t.name, i, err))
		}
	}
	return errors.Join(errs...)
}

// QueueStats is what one queue served since the VM started.
type QueueStats struct {
	Kicks      uint64 `json:"kicks"`
	Chains     uint64 `json:"chains"`
	Interrupts uint64 `json:"interrupts"`
	Dropped    uint64 `json:"dropped"`
}

// QueueStats returns each queue's counts, by queue index; safe from any
// goroutine.
func (t *PCI) QueueStats() []QueueStats {
	s := make([]QueueStats, len(t.counts))
	for i := range t.counts {
		c := &t.counts[i]
		s[i] = QueueStats{Kicks: c.Kicks.Load(), Chains: c.Chains.Load(), Interrupts: c.Interrupts.Load(), Dropped: c.Dropped.Load()}
	}
	return s
}
