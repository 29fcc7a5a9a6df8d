// Package devices owns the address-range buses that route the guest's port I/O
// and MMIO accesses to emulated devices, and the small interfaces devices use
// to raise interrupts and to end the VM. It knows nothing of KVM: the
// composition root implements these interfaces.
package devices

// Device is an emulated device mapped on a Bus. The offset is relative to the
// base the device was registered at; len(data) is the access width (1, 2, 4 or
// 8). A device checks offset+len against its own size: the bus only promises
// that offset is inside the registered range.
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// IRQLine is one interrupt input of the guest's interrupt controllers. The
// level models the device's INTR pin: high while an interrupt is pending. An
// edge-triggered controller sees the 0→1 transition.
type IRQLine interface {
	SetLevel(high bool)
}

// Event is a request from the guest to end the VM.
type Event int

const (
	// PowerOff: the guest entered ACPI S5 (poweroff).
	PowerOff Event = iota + 1
	// Reset: the guest asked for a reset or reboot.
	Reset
	// Crash: the guest reported a kernel panic.
	Crash
)

func (e Event) String() string {
	switch e {
	case PowerOff:
		return "poweroff"
	case Reset:
		return "reset"
	case Crash:
		return "crash"
	}
	return "unknown event"
}

// EventSink receives guest requests to end the VM. It must not block.
type EventSink func(Event)

// MSIMessage is one MSI or MSI-X message (PCI 3.0 §6.8): the function
// signals by writing Data to Addr.
type MSIMessage struct {
	Addr uint64
	Data uint32
}

// MSIVectors delivers one PCI function's MSI-X vectors. The composition root
// implements it with KVM GSI routes and irqfds, so Signal costs one eventfd
// write and no VM exit.
type MSIVectors interface {
	// Route points vector at m.
	Route(vector int, m MSIMessage) error
	// Signal raises vector with its last routed message; a vector never
	// routed is dropped.
	Signal(vector int) error
}
