// Package acpipm emulates the registers a hardware-reduced ACPI platform
// uses to power off and reset: SLEEP_CONTROL_REG, SLEEP_STATUS_REG
// (ACPI 6.5, 4.8.3.7 and 4.8.3.8) and the FADT's RESET_REG (5.2.9).
package acpipm

import "github.com/govmm/govmm/devices"

// Register offsets from the base the device is registered at.
const (
	OffsetSleepControl = 0
	OffsetSleepStatus  = 1
	OffsetReset        = 2
	Size               = 3
)

const (
	sleepEnable    = 1 << 5 // SLP_EN
	sleepTypeShift = 2      // SLP_TYPx, bits 4:2
	sleepTypeMask  = 0x7
	// S5SleepType is the SLP_TYP the DSDT's \_S5 object hands the OS.
	S5SleepType = 5
)

// PM is the device. It holds no state: each register write is an event.
type PM struct {
	sink       devices.EventSink
	resetValue uint8
}

// New returns the registers; a reset write must carry resetValue.
func New(sink devices.EventSink, resetValue uint8) *PM {
	return &PM{sink: sink, resetValue: resetValue}
}

// Read returns 0: no wake status to report.
func (p *PM) Read(offset uint64, data []byte) { clear(data) }

// Write turns an S5 request into PowerOff and the reset value into Reset.
func (p *PM) Write(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	v := data[0]
	switch offset {
	case OffsetSleepControl:
		if v&sleepEnable != 0 && v>>sleepTypeShift&sleepTypeMask == S5SleepType {
			p.sink(devices.PowerOff)
		}
	case OffsetReset:
		if v == p.resetValue {
			p.sink(devices.Reset)
		}
	}
}
