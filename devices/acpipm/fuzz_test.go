package acpipm

import (
	"slices"
	"testing"

	"github.com/govmm/govmm/devices"
)

// FuzzPM writes and reads the registers at every offset and width. Reads
// are zero; a write is a PowerOff only if it sets SLP_EN with SLP_TYP S5 in
// SLEEP_CONTROL_REG (ACPI 6.5, 4.8.3.7), a Reset only if it writes the
// reset value to RESET_REG (5.2.9), and nothing otherwise. Ops are three
// bytes: offset, width (1, 2, 4 or 8 by its low bits; bit 2: a read) and
// the first byte written.
func FuzzPM(f *testing.F) {
	const resetValue = 0x0f
	f.Add([]byte{OffsetSleepControl, 0, sleepEnable | S5SleepType<<sleepTypeShift})
	f.Add([]byte{OffsetReset, 0, resetValue, OffsetSleepStatus, 4, 0})
	f.Add([]byte{OffsetSleepControl, 3, S5SleepType << sleepTypeShift, OffsetReset, 1, resetValue + 1, 7, 0, 0xff})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var events []devices.Event
		pm := New(func(e devices.Event) { events = append(events, e) }, resetValue)
		for ; len(ops) >= 3; ops = ops[3:] {
			off, width, v := uint64(ops[0]), ops[1], ops[2]
			data := make([]byte, 1<<(width&3))
			if width&4 != 0 {
				for i := range data {
					data[i] = 0xee
				}
				pm.Read(off, data)
				if slices.ContainsFunc(data, func(b byte) bool { return b != 0 }) {
					t.Fatalf("read of %d bytes at %d = % x, want zeros", len(data), off, data)
				}
				continue
			}
			data[0] = v
			n := len(events)
			pm.Write(off, data)
			var want []devices.Event
			switch {
			case off == OffsetSleepControl && v&sleepEnable != 0 && v>>sleepTypeShift&sleepTypeMask == S5SleepType:
				want = []devices.Event{devices.PowerOff}
			case off == OffsetReset && v == resetValue:
				want = []devices.Event{devices.Reset}
			}
			if !slices.Equal(events[n:], want) {
				t.Fatalf("writing %#x at %d raised %v, want %v", v, off, events[n:], want)
			}
		}
	})
}
