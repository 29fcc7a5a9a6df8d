// Package cmos emulates the PC's MC146818 real-time clock and its CMOS RAM
// (Motorola MC146818A data sheet), so the guest reads the wall-clock time.
package cmos

import (
	"sync"
	"time"
)

// Port offsets and RTC register indices.
const (
	offsetIndex = 0
	offsetData  = 1

	regSeconds   = 0x00
	regMinutes   = 0x02
	regHours     = 0x04
	regWeekday   = 0x06
	regDay       = 0x07
	regMonth     = 0x08
	regYear      = 0x09
	regA         = 0x0a
	regB         = 0x0b
	regC         = 0x0c
	regD         = 0x0d
	regCentury   = 0x32
	indexMask    = 0x7f // bit 7 of the index port disables NMI
	ramSize      = 128
	bSet         = 0x80 // SET: the clock stops while the guest writes it
	bBinary      = 0x04 // DM: binary rather than BCD
	b24Hour      = 0x02
	hourPM       = 0x80
	aDefault     = 0x26 // 32.768 kHz time base, 1024 Hz periodic rate
	aUIP         = 0x80
	dValidRAM    = 0x80
	bDefault     = b24Hour
	defaultIndex = regD
)

// CMOS is the clock and its RAM. Register it at port 0x70, size 2.
type CMOS struct {
	now func() time.Time

	mu     sync.Mutex
	index  uint8
	ram    [ramSize]uint8
	offset time.Duration // guest time minus host time, after the guest sets the clock
}

// New returns a CMOS whose clock follows now.
func New(now func() time.Time) *CMOS {
	c := &CMOS{now: now, index: defaultIndex}
	c.ram[regA] = aDefault
	c.ram[regB] = bDefault
	c.ram[regD] = dValidRAM
	return c
}

// Read serves the index port (reads as all ones) and the data port.
func (c *CMOS) Read(offset uint64, data []byte) {
	clear(data)
	if len(data) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch offset {
	case offsetIndex:
		data[0] = 0xff
	case offsetData:
		data[0] = c.readReg(c.index)
	}
}

// Write selects a register (index port) or writes it (data port).
func (c *CMOS) Write(offset uint64, data []byte) {
	if len(data) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch offset {
	case offsetIndex:
		c.index = data[0] & indexMask
	case offsetData:
		c.writeReg(c.index, data[0])
	}
}

func (c *CMOS) guestTime() time.Time { return c.now().Add(c.offset).UTC() }

func (c *CMOS) readReg(i uint8) uint8 {
	if c.ram[regB]&bSet != 0 && isTimeReg(i) {
		return c.ram[i] // the clock as latched or written since SET
	}
	switch i {
	case regA:
		// UIP is never set: an update is instantaneous here, and a guest
		// waiting for UIP to clear would otherwise spin on this port.
		return c.ram[regA] &^ aUIP
	case regC:
		v := c.ram[regC]
		c.ram[regC] = 0 // reading C acknowledges its flags
		return v
	}
	if v, ok := timeField(c.guestTime(), i, c.ram[regB]); ok {
		return v
	}
	return c.ram[i]
}

func (c *CMOS) writeReg(i, v uint8) {
	switch i {
	case regC, regD:
		return // read-only
	case regB:
		c.writeB(v)
		return
	}
	if !isTimeReg(i) || c.ram[regB]&bSet != 0 {
		c.ram[i] = v
		return
	}
	t := setTimeField(c.guestTime(), i, v, c.ram[regB])
	c.offset = t.Sub(c.now())
}

// writeB implements SET (MC146818A, register B): while it is set the clock
// registers hold still and take the guest's writes, and clearing it starts
// the clock from them. Applying field by field instead would let an
// intermediate date such as 31 February roll the month over.
func (c *CMOS) writeB(v uint8) {
	old := c.ram[regB]
	c.ram[regB] = v
	switch {
	case v&bSet != 0 && old&bSet == 0:
		t := c.guestTime()
		for r := range uint8(ramSize) {
			if isTimeReg(r) {
				c.ram[r], _ = timeField(t, r, v)
			}
		}
	case v&bSet == 0 && old&bSet != 0:
		c.offset = latchedTime(&c.ram, v).Sub(c.now())
	}
}
