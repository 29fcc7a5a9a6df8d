package acpipm

import (
	"slices"
	"testing"

	"github.com/govmm/govmm/devices"
)

const resetValue = 1

func newPM() (*PM, *[]devices.Event) {
	var events []devices.Event
	return New(func(e devices.Event) { events = append(events, e) }, resetValue), &events
}

func sleepControl(slpTyp uint8, enable bool) uint8 {
	v := slpTyp << sleepTypeShift
	if enable {
		v |= sleepEnable
	}
	return v
}

func TestWrites(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset uint64
		value  uint8
		want   []devices.Event
	}{
		{"S5 with SLP_EN powers off", OffsetSleepControl, sleepControl(S5SleepType, true), []devices.Event{devices.PowerOff}},
		{"S5 without SLP_EN only prepares", OffsetSleepControl, sleepControl(S5SleepType, false), nil},
		{"S3 is not a power-off", OffsetSleepControl, sleepControl(3, true), nil},
		{"S0 is not a power-off", OffsetSleepControl, sleepControl(0, true), nil},
		{"S4 is not a power-off", OffsetSleepControl, sleepControl(4, true), nil},
		{"S5 with other bits set", OffsetSleepControl, sleepControl(S5SleepType, true) | 0xc3, []devices.Event{devices.PowerOff}},
		{"S5 written to the status register", OffsetSleepStatus, sleepControl(S5SleepType, true), nil},
		{"reset value resets", OffsetReset, resetValue, []devices.Event{devices.Reset}},
		{"another value does not reset", OffsetReset, resetValue + 1, nil},
		{"reset value at the sleep status register", OffsetSleepStatus, resetValue, nil},
		{"past the registers", Size, resetValue, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm, events := newPM()
			pm.Write(tc.offset, []byte{tc.value})
			if !slices.Equal(*events, tc.want) {
				t.Errorf("write %#02x at offset %d gave events %v, want %v", tc.value, tc.offset, *events, tc.want)
			}
		})
	}
}

func TestReadsAreZero(t *testing.T) {
	pm, events := newPM()
	for offset := uint64(0); offset <= Size; offset++ {
		b := []byte{0xff, 0xff}
		pm.Read(offset, b)
		if b[0] != 0 || b[1] != 0 {
			t.Errorf("read at offset %d = % x, want zeros (no wake status)", offset, b)
		}
	}
	pm.Write(OffsetReset, nil)
	pm.Read(0, nil)
	if len(*events) != 0 {
		t.Errorf("reads and empty writes gave events %v", *events)
	}
}
