package i8042

import (
	"slices"
	"testing"

	"github.com/govmm/govmm/devices"
)

// Fuzz ops are two bytes: kind (bit 0: the command port, else the data
// port; bit 1: write, else read; bits 2–3: width 1, 2, 4 or 8; bit 4: an
// offset of 1 instead of 0) and the value written.
const (
	opCommand = 1 << 0
	opWrite   = 1 << 1
	opOffset  = 1 << 4
)

// model is what the guest should see: the controller as the 8042's command
// set describes it, kept to the commands the device implements.
type model struct {
	out         []byte
	commandByte byte
	expect      byte
	lastCommand bool
	resets      int
}

func (m *model) command(v byte) {
	m.lastCommand, m.expect = true, 0
	switch v {
	case cmdReadCommandByte:
		m.reply(m.commandByte)
	case cmdWriteCommandByte, cmdWriteOutputPort:
		m.expect = v
	case cmdSelfTest:
		m.reply(selfTestOK)
	case cmdTestKbd, cmdTestAux:
		m.reply(0)
	case cmdPulseReset:
		m.resets++
	case cmdDisableAux:
		m.commandByte |= ctrAuxOff
	case cmdEnableAux:
		m.commandByte &^= ctrAuxOff
	case cmdDisableKbd:
		m.commandByte |= ctrKbdOff
	case cmdEnableKbd:
		m.commandByte &^= ctrKbdOff
	}
}

func (m *model) data(v byte) {
	m.lastCommand = false
	switch m.expect {
	case cmdWriteCommandByte:
		m.commandByte = v
	case cmdWriteOutputPort:
		if v&outputReset == 0 {
			m.resets++
		}
	}
	m.expect = 0
}

func (m *model) reply(b byte) {
	if len(m.out) < 16 {
		m.out = append(m.out, b)
	}
}

// FuzzI8042 drives both ports with reads and writes of every width and
// offset and checks each answer against the model: status always shows a
// passed self test and an unlocked keyboard, OBF exactly while replies
// wait, replies come out in order and are bounded, bytes past the first
// and accesses off the register read zero, and the reset line is pulsed
// exactly when the guest asked.
func FuzzI8042(f *testing.F) {
	w, c := byte(opWrite), byte(opWrite|opCommand)
	f.Add([]byte{c, cmdPulseReset})
	f.Add([]byte{c, cmdSelfTest, opCommand, 0, 0, 0, c, cmdReadCommandByte, 0, 0})
	f.Add([]byte{c, cmdWriteCommandByte, w, 0x47, c, cmdReadCommandByte, 0, 0, c, cmdWriteOutputPort, w, 0xfe})
	f.Add([]byte{c, cmdWriteOutputPort, c, cmdEnableAux, w, 0, c | opOffset, cmdPulseReset, c | 3<<2, cmdTestAux, 3 << 2, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var events []devices.Event
		k := New(func(e devices.Event) { events = append(events, e) })
		m := &model{commandByte: ctrAuxOff | ctrKbdOff}
		for ; len(ops) >= 2; ops = ops[2:] {
			kind, v := ops[0], ops[1]
			data := make([]byte, 1<<(kind>>2&3))
			off := uint64(kind >> 4 & 1)
			port := k.DataPort()
			if kind&opCommand != 0 {
				port = k.CommandPort()
			}
			if kind&opWrite != 0 {
				data[0] = v
				port.Write(off, data)
				switch {
				case off != 0:
				case kind&opCommand != 0:
					m.command(v)
				default:
					m.data(v)
				}
				if len(events) != m.resets || slices.ContainsFunc(events, func(e devices.Event) bool { return e != devices.Reset }) {
					t.Fatalf("events %v after writing %#x; want %d resets", events, v, m.resets)
				}
				continue
			}
			for i := range data {
				data[i] = 0xee
			}
			port.Read(off, data)
			var want byte
			switch {
			case off != 0:
			case kind&opCommand != 0:
				want = statusSystem | statusUnlock
				if len(m.out) > 0 {
					want |= statusOBF
				}
				if m.lastCommand {
					want |= statusCommand
				}
			case len(m.out) > 0:
				want, m.out = m.out[0], m.out[1:]
			}
			if data[0] != want || slices.ContainsFunc(data[1:], func(b byte) bool { return b != 0 }) {
				t.Fatalf("%d-byte read at offset %d of port %#x = % x; want %#x then zeros", len(data), off, kind&opCommand, data, want)
			}
		}
	})
}
