package cmos

import "time"

// isTimeReg says whether register i holds part of the clock; the century
// byte is where the FADT says it is.
func isTimeReg(i uint8) bool {
	switch i {
	case regSeconds, regMinutes, regHours, regWeekday, regDay, regMonth, regYear, regCentury:
		return true
	}
	return false
}

// latchedTime is the time the clock registers in ram hold; the weekday is
// derived from the date.
func latchedTime(ram *[ramSize]uint8, b uint8) time.Time {
	year := decode(ram[regCentury], b)*100 + decode(ram[regYear], b)
	return time.Date(year, time.Month(decode(ram[regMonth], b)), decode(ram[regDay], b),
		decodeHour(ram[regHours], b), decode(ram[regMinutes], b), decode(ram[regSeconds], b), 0, time.UTC)
}

// timeField encodes one clock field of t in the format register B selects.
func timeField(t time.Time, reg, b uint8) (uint8, bool) {
	var v int
	switch reg {
	case regSeconds:
		v = t.Second()
	case regMinutes:
		v = t.Minute()
	case regHours:
		return encodeHour(t.Hour(), b), true
	case regWeekday:
		v = int(t.Weekday()) + 1 // Sunday is 1
	case regDay:
		v = t.Day()
	case regMonth:
		v = int(t.Month())
	case regYear:
		v = t.Year() % 100
	case regCentury:
		v = t.Year() / 100
	default:
		return 0, false
	}
	return encode(v, b), true
}

func encodeHour(h int, b uint8) uint8 {
	if b&b24Hour != 0 {
		return encode(h, b)
	}
	pm := h >= 12
	h %= 12
	if h == 0 {
		h = 12
	}
	v := encode(h, b)
	if pm {
		v |= hourPM
	}
	return v
}

// setTimeField returns t with one field replaced by the guest's value v.
func setTimeField(t time.Time, reg, v, b uint8) time.Time {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	switch reg {
	case regSeconds:
		sec = decode(v, b)
	case regMinutes:
		minute = decode(v, b)
	case regHours:
		hour = decodeHour(v, b)
	case regDay:
		day = decode(v, b)
	case regMonth:
		month = time.Month(decode(v, b))
	case regYear:
		year = year/100*100 + decode(v, b)
	case regCentury:
		year = decode(v, b)*100 + year%100
	case regWeekday:
		return t // derived from the date
	}
	return time.Date(year, month, day, hour, minute, sec, t.Nanosecond(), time.UTC)
}

func decodeHour(v, b uint8) int {
	if b&b24Hour != 0 {
		return decode(v, b)
	}
	h := decode(v&^hourPM, b) % 12
	if v&hourPM != 0 {
		h += 12
	}
	return h
}

func encode(v int, b uint8) uint8 {
	if b&bBinary != 0 {
		return uint8(v)
	}
	return uint8(v/10<<4 | v%10)
}

func decode(v, b uint8) int {
	if b&bBinary != 0 {
		return int(v)
	}
	return int(v>>4)*10 + int(v&0xf)
}
