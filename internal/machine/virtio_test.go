package machine

import (
	"encoding/binary"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
)

// idleDevice is a virtio device with two queues that never does anything.
type idleDevice struct{ resets int }

func (d *idleDevice) Type() virtio.DeviceType                { return virtio.TypeRNG }
func (d *idleDevice) Features() uint64                       { return 0 }
func (d *idleDevice) QueueMaxSizes() []uint16                { return []uint16{64, 64} }
func (d *idleDevice) ReadConfig(offset uint64, data []byte)  { clear(data) }
func (d *idleDevice) WriteConfig(offset uint64, data []byte) {}
func (d *idleDevice) Activate(a virtio.Activation) error     { return nil }
func (d *idleDevice) Reset()                                 { d.resets++ }

// kvmVM returns a VM with an in-kernel irqchip and PCI wired as New wires
// it, on this machine's KVM; it skips without one unless GOVMM_REQUIRE_KVM=1.
func kvmVM(t *testing.T) *Machine {
	t.Helper()
	sys, err := kvm.Open("/dev/kvm")
	if err != nil {
		if os.Getenv("GOVMM_REQUIRE_KVM") == "1" {
			t.Fatal(err)
		}
		t.Skipf("needs KVM for irqfd and ioeventfd (%v); set GOVMM_REQUIRE_KVM=1 to make this a failure", err)
	}
	v := &Machine{sys: sys}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Error(err)
		}
	})
	if v.kvm, err = sys.CreateVM(); err != nil {
		t.Fatal(err)
	}
	if v.ram, err = memory.New(16 * memory.MiB); err != nil {
		t.Fatal(err)
	}
	if err := v.kvm.CreateIRQChip(); err != nil {
		t.Fatal(err)
	}
	v.buses.PIO, v.buses.MMIO = devices.NewBus("pio"), devices.NewBus("mmio")
	if err := v.wirePCI(); err != nil {
		t.Fatal(err)
	}
	return v
}

// registered says whether KVM holds an ioeventfd for n at addr: registering
// the same one again fails with EEXIST.
func registered(t *testing.T, v *Machine, n virtio.Notification, addr uint64) bool {
	t.Helper()
	err := v.kvm.IOEventFD(n.Kick.FD(), addr, notifyLen, false)
	if err == nil {
		if err := v.kvm.RemoveIOEventFD(n.Kick.FD(), addr, notifyLen, false); err != nil {
			t.Fatal(err)
		}
		return false
	}
	if !errors.Is(err, syscall.EEXIST) {
		t.Fatal(err)
	}
	return true
}

func mapped(v *Machine, addr uint64) bool { return v.buses.MMIO.Read(addr, make([]byte, 4)) }

// TestAddVirtioDevice wires a virtio device on real KVM and moves its BAR
// as a guest would: the MMIO mapping and the ioeventfds follow.
func TestAddVirtioDevice(t *testing.T) {
	v := kvmVM(t)
	dev := &idleDevice{}
	tr, err := v.addVirtioDevice(dev)
	if err != nil {
		t.Fatal(err)
	}
	slot := pci.BDF{Device: firstPCISlot}
	cfg := make([]byte, 4)
	v.pci.ReadConfig(slot, 0, cfg)
	if id := binary.LittleEndian.Uint32(cfg); id != 0x10441af4 {
		t.Fatalf("00:01.0 vendor/device %#x, want virtio-rng 0x10441af4", id)
	}
	v.pci.ReadConfig(slot, 0x3c, cfg)
	if line, pin := cfg[0], cfg[1]; line != 17 || pin != 1 {
		t.Errorf("interrupt line %d pin %d, want GSI 17 on INTA#", line, pin)
	}
	if next := v.msi.NextGSI(); next != firstMSIGSI+3 {
		t.Errorf("next free GSI %d, want %d: vectors for two queues and configuration", next, firstMSIGSI+3)
	}
	notes := tr.Notifications()
	const base, moved = pciMMIOStart, 0xd0000000
	if !mapped(v, base) || len(notes) != 2 {
		t.Fatalf("BAR 0 mapped at %#x: %v; %d notify registers, want 2", base, mapped(v, base), len(notes))
	}
	for i, n := range notes {
		if !registered(t, v, n, base+n.Offset) {
			t.Errorf("queue %d: no ioeventfd at %#x", i, base+n.Offset)
		}
	}

	// BAR 0 is 64-bit: the move lands when the upper half is written.
	for _, w := range []struct {
		reg uint16
		val uint32
	}{{0x10, moved}, {0x14, 0}} {
		binary.LittleEndian.PutUint32(cfg, w.val)
		v.pci.WriteConfig(slot, w.reg, cfg)
	}
	if mapped(v, base) || !mapped(v, moved) {
		t.Errorf("after the move: mapped at the old address %v, at the new %v", mapped(v, base), mapped(v, moved))
	}
	for i, n := range notes {
		if registered(t, v, n, base+n.Offset) || !registered(t, v, n, moved+n.Offset) {
			t.Errorf("queue %d: the ioeventfd did not move to %#x", i, moved+n.Offset)
		}
	}

	if _, err := v.addVirtioDevice(&idleDevice{}); err != nil {
		t.Fatal(err)
	}
	if !mapped(v, base+virtio.BARSize) || v.nextSlot != firstPCISlot+2 {
		t.Errorf("second device: BAR at %#x mapped %v, next slot %d", base+virtio.BARSize, mapped(v, base+virtio.BARSize), v.nextSlot)
	}
	if err := v.Close(); err != nil || dev.resets == 0 {
		t.Errorf("Close: %v, device reset %d times; want it reset", err, dev.resets)
	}
}
