package i8042

import (
	"testing"

	"github.com/govmm/govmm/devices"
)

type controller struct {
	t      *testing.T
	k      *I8042
	events []devices.Event
}

func newController(t *testing.T) *controller {
	c := &controller{t: t}
	c.k = New(func(e devices.Event) { c.events = append(c.events, e) })
	return c
}

func (c *controller) command(v uint8) { c.k.CommandPort().Write(0, []byte{v}) }
func (c *controller) data(v uint8)    { c.k.DataPort().Write(0, []byte{v}) }

func (c *controller) status() uint8 {
	b := []byte{0xee}
	c.k.CommandPort().Read(0, b)
	return b[0]
}

func (c *controller) read() uint8 {
	b := []byte{0xee}
	c.k.DataPort().Read(0, b)
	return b[0]
}

// reply expects a byte waiting at the data port, announced by OBF.
func (c *controller) reply(want uint8, why string) {
	c.t.Helper()
	if c.status()&statusOBF == 0 {
		c.t.Errorf("%s: status %#02x has no OBF, want a reply waiting", why, c.status())
	}
	if got := c.read(); got != want {
		c.t.Errorf("%s: data port reads %#02x, want %#02x", why, got, want)
	}
	if c.status()&statusOBF != 0 {
		c.t.Errorf("%s: OBF still set after the reply was read", why)
	}
}

func TestPulseResetLine(t *testing.T) {
	c := newController(t)
	// Linux's reboot=k: wait for the input buffer to drain, then 0xfe.
	if c.status()&0x02 != 0 {
		t.Fatal("status reports the input buffer full: Linux's kb_wait would spin")
	}
	c.command(cmdPulseReset)
	if len(c.events) != 1 || c.events[0] != devices.Reset {
		t.Errorf("events after 0xfe on port 0x64 = %v, want [reset]", c.events)
	}
}

func TestWriteOutputPortReset(t *testing.T) {
	c := newController(t)
	c.command(cmdWriteOutputPort)
	c.data(0xff) // bit 0 set: CPU runs
	if len(c.events) != 0 {
		t.Errorf("output port 0xff gave %v, want no event", c.events)
	}
	c.command(cmdWriteOutputPort)
	c.data(0xfe) // bit 0 clear: CPU held in reset
	if len(c.events) != 1 || c.events[0] != devices.Reset {
		t.Errorf("output port 0xfe gave %v, want [reset]", c.events)
	}
	c.data(0xfe) // no command pending: a byte for the keyboard
	if len(c.events) != 1 {
		t.Errorf("a data byte with no command pending gave %v", c.events)
	}
}

// A keyboard byte written after a command that replaced 0xd1 is not the
// output port: bit 0 clear there would reset the machine.
func TestNewCommandCancelsPendingDataByte(t *testing.T) {
	c := newController(t)
	c.command(cmdWriteOutputPort)
	c.command(cmdReadCommandByte)
	c.reply(ctrAuxOff|ctrKbdOff, "command byte")
	c.data(0xf4) // keyboard: enable scanning
	if len(c.events) != 0 {
		t.Errorf("keyboard byte 0xf4 after an abandoned 0xd1 gave %v, want no event", c.events)
	}
	c.command(cmdWriteCommandByte)
	c.command(cmdSelfTest)
	c.reply(selfTestOK, "self test")
	c.data(0x00)
	c.command(cmdReadCommandByte)
	c.reply(ctrAuxOff|ctrKbdOff, "command byte after an abandoned 0x60")
}

func TestStatusPort(t *testing.T) {
	c := newController(t)
	if got, want := c.status(), uint8(statusSystem|statusUnlock); got != want {
		t.Errorf("status at power on = %#02x, want %#02x (self test passed, not inhibited)", got, want)
	}
	c.command(cmdEnableKbd)
	if c.status()&statusCommand == 0 {
		t.Error("status has no command flag after a write to port 0x64")
	}
	c.data(0)
	if c.status()&statusCommand != 0 {
		t.Error("status keeps the command flag after a write to port 0x60")
	}
	if c.read() != 0 {
		t.Error("empty data port does not read 0")
	}
}

func TestCommandByte(t *testing.T) {
	c := newController(t)
	c.command(cmdReadCommandByte)
	c.reply(ctrAuxOff|ctrKbdOff, "command byte at power on")
	c.command(cmdWriteCommandByte)
	c.data(0x47)
	c.command(cmdReadCommandByte)
	c.reply(0x47, "command byte written with 0x60")

	for _, tc := range []struct {
		cmd  uint8
		want uint8
	}{
		{cmdDisableKbd, 0x47 | ctrKbdOff},
		{cmdDisableAux, 0x47 | ctrKbdOff | ctrAuxOff},
		{cmdEnableKbd, 0x47 | ctrAuxOff},
		{cmdEnableAux, 0x47},
	} {
		c.command(tc.cmd)
		c.command(cmdReadCommandByte)
		c.reply(tc.want, "command byte after the enable/disable command")
	}
}

func TestSelfTests(t *testing.T) {
	c := newController(t)
	for _, tc := range []struct {
		cmd, want uint8
	}{{cmdSelfTest, selfTestOK}, {cmdTestKbd, 0}, {cmdTestAux, 0}} {
		c.command(tc.cmd)
		c.reply(tc.want, "self test")
	}
}

func TestReplyQueueIsBounded(t *testing.T) {
	c := newController(t)
	for i := 0; i < 1000; i++ {
		c.command(cmdSelfTest)
	}
	if len(c.k.out) > 16 {
		t.Errorf("%d replies queued, want at most 16", len(c.k.out))
	}
}

func TestOddAccessesAreHarmless(t *testing.T) {
	c := newController(t)
	for _, p := range []devices.Device{c.k.DataPort(), c.k.CommandPort()} {
		p.Read(0, nil)
		p.Write(0, nil)
		p.Write(1, []byte{cmdPulseReset})
		b := []byte{1, 2}
		p.Read(1, b)
		if b[0] != 0 || b[1] != 0 {
			t.Errorf("read past the port = % x, want zeros", b)
		}
	}
	if len(c.events) != 0 {
		t.Errorf("odd accesses gave events %v", c.events)
	}
}
