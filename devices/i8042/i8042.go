// Package i8042 emulates as much of the PC's keyboard controller as Linux
// touches with no keyboard attached, chiefly the reset line it pulses to
// reboot the machine.
package i8042

import (
	"sync"

	"github.com/govmm/govmm/devices"
)

// Controller commands (written to the command port).
const (
	cmdReadCommandByte  = 0x20
	cmdWriteCommandByte = 0x60
	cmdDisableAux       = 0xa7
	cmdEnableAux        = 0xa8
	cmdTestAux          = 0xa9
	cmdSelfTest         = 0xaa
	cmdTestKbd          = 0xab
	cmdDisableKbd       = 0xad
	cmdEnableKbd        = 0xae
	cmdWriteOutputPort  = 0xd1
	cmdPulseReset       = 0xfe

	selfTestOK    = 0x55
	statusOBF     = 0x01 // output buffer full
	statusSystem  = 0x04 // self test passed
	statusCommand = 0x08 // last write was a command
	statusUnlock  = 0x10 // keyboard not inhibited by the keylock
	ctrKbdOff     = 0x10 // command byte: keyboard clock disabled
	ctrAuxOff     = 0x20 // command byte: aux clock disabled
	outputReset   = 0x01 // output port bit 0: 0 holds the CPU in reset
)

// I8042 is the controller. Register DataPort at 0x60 and CommandPort at 0x64.
type I8042 struct {
	sink devices.EventSink

	mu          sync.Mutex
	commandByte uint8
	status      uint8
	out         []byte // bytes waiting for the guest at the data port
	expect      uint8  // command awaiting a data byte, or 0
}

// New returns a controller that reports a reset request to sink.
func New(sink devices.EventSink) *I8042 {
	return &I8042{sink: sink, status: statusSystem | statusUnlock, commandByte: ctrAuxOff | ctrKbdOff}
}

// DataPort is the view for port 0x60.
func (k *I8042) DataPort() devices.Device { return dataPort{k} }

// CommandPort is the view for port 0x64 (status on read).
func (k *I8042) CommandPort() devices.Device { return commandPort{k} }

type dataPort struct{ k *I8042 }

func (p dataPort) Read(offset uint64, data []byte) {
	clear(data)
	if offset != 0 || len(data) == 0 {
		return
	}
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.out) > 0 {
		data[0] = k.out[0]
		k.out = k.out[1:]
	}
}

func (p dataPort) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) == 0 {
		return
	}
	k := p.k
	k.mu.Lock()
	reset := false
	k.status &^= statusCommand
	switch k.expect {
	case cmdWriteCommandByte:
		k.commandByte = data[0]
	case cmdWriteOutputPort:
		reset = data[0]&outputReset == 0
	}
	k.expect = 0
	k.mu.Unlock()
	if reset {
		k.sink(devices.Reset)
	}
}

type commandPort struct{ k *I8042 }

func (p commandPort) Read(offset uint64, data []byte) {
	clear(data)
	if offset != 0 || len(data) == 0 {
		return
	}
	k := p.k
	k.mu.Lock()
	defer k.mu.Unlock()
	data[0] = k.status
	if len(k.out) > 0 {
		data[0] |= statusOBF
	}
}

func (p commandPort) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) == 0 {
		return
	}
	k := p.k
	k.mu.Lock()
	k.status |= statusCommand
	k.expect = 0 // a new command abandons one still waiting for its data byte
	reset := false
	switch cmd := data[0]; cmd {
	case cmdReadCommandByte:
		k.reply(k.commandByte)
	case cmdWriteCommandByte, cmdWriteOutputPort:
		k.expect = cmd
	case cmdSelfTest:
		k.reply(selfTestOK)
	case cmdTestKbd, cmdTestAux:
		k.reply(0) // no error
	case cmdPulseReset:
		reset = true
	// Nothing is attached, but the command byte reflects the request, as
	// Linux reads it back to check.
	case cmdDisableAux:
		k.commandByte |= ctrAuxOff
	case cmdEnableAux:
		k.commandByte &^= ctrAuxOff
	case cmdDisableKbd:
		k.commandByte |= ctrKbdOff
	case cmdEnableKbd:
		k.commandByte &^= ctrKbdOff
	}
	k.mu.Unlock()
	if reset {
		k.sink(devices.Reset)
	}
}

// reply queues a byte for the data port; the queue is bounded by commands.
func (k *I8042) reply(b byte) {
	if len(k.out) < 16 {
		k.out = append(k.out, b)
	}
}
