package cmos

import (
	"testing"
	"time"
)

// clock is a host clock the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// rtc drives a CMOS through its two ports as a guest does.
type rtc struct {
	t   *testing.T
	c   *CMOS
	clk *clock
}

// Wednesday 31 January 2024, 13:45:56 UTC: a PM hour, a day that does not
// exist in every month.
var start = time.Date(2024, time.January, 31, 13, 45, 56, 0, time.UTC)

func newRTC(t *testing.T) *rtc {
	clk := &clock{start}
	return &rtc{t: t, c: New(clk.now), clk: clk}
}

func (r *rtc) read(index uint8) uint8 {
	r.c.Write(offsetIndex, []byte{index})
	b := []byte{0xee}
	r.c.Read(offsetData, b)
	return b[0]
}

func (r *rtc) write(index, v uint8) {
	r.c.Write(offsetIndex, []byte{index})
	r.c.Write(offsetData, []byte{v})
}

type field struct {
	reg  uint8
	name string
	want uint8
}

func (r *rtc) expect(why string, fields ...field) {
	r.t.Helper()
	for _, f := range fields {
		if got := r.read(f.reg); got != f.want {
			r.t.Errorf("%s: %s (register %#02x) = %#02x, want %#02x", why, f.name, f.reg, got, f.want)
		}
	}
}

func TestTimeInBCD(t *testing.T) {
	r := newRTC(t)
	r.expect("BCD, 24-hour (the reset default)",
		field{regSeconds, "seconds", 0x56},
		field{regMinutes, "minutes", 0x45},
		field{regHours, "hours", 0x13},
		field{regWeekday, "weekday", 0x04}, // Sunday is 1
		field{regDay, "day", 0x31},
		field{regMonth, "month", 0x01},
		field{regYear, "year", 0x24},
		field{regCentury, "century", 0x20},
		field{regB, "register B", b24Hour},
		field{regD, "register D", dValidRAM},
	)
}

func TestTimeInBinary(t *testing.T) {
	r := newRTC(t)
	r.write(regB, b24Hour|bBinary)
	r.expect("binary, 24-hour",
		field{regSeconds, "seconds", 56},
		field{regMinutes, "minutes", 45},
		field{regHours, "hours", 13},
		field{regDay, "day", 31},
		field{regMonth, "month", 1},
		field{regYear, "year", 24},
		field{regCentury, "century", 20},
	)
}

func TestTwelveHourMode(t *testing.T) {
	for _, tc := range []struct {
		hour    int
		b       uint8
		want    uint8
		comment string
	}{
		{13, 0, hourPM | 0x01, "1 PM in BCD"},
		{0, 0, 0x12, "midnight is 12 AM"},
		{12, 0, hourPM | 0x12, "noon is 12 PM"},
		{11, 0, 0x11, "11 AM"},
		{23, bBinary, hourPM | 11, "11 PM in binary"},
	} {
		r := newRTC(t)
		r.clk.t = time.Date(2024, 1, 1, tc.hour, 0, 0, 0, time.UTC)
		r.write(regB, tc.b)
		r.expect(tc.comment, field{regHours, "hours", tc.want})

		// Writing the value back keeps the hour.
		r.write(regHours, tc.want)
		r.write(regB, b24Hour)
		if got := r.read(regHours); got != byte(tc.hour/10<<4|tc.hour%10) {
			t.Errorf("%s written back: 24-hour BCD reads %#02x, want hour %d", tc.comment, got, tc.hour)
		}
	}
}

func TestClockFollowsTheHost(t *testing.T) {
	r := newRTC(t)
	r.clk.t = r.clk.t.Add(5 * time.Second)
	r.expect("five seconds later", field{regSeconds, "seconds", 0x01}, field{regMinutes, "minutes", 0x46})
}

func TestUpdateInProgressNeverSet(t *testing.T) {
	r := newRTC(t)
	for i := 0; i < 1000; i++ {
		r.clk.t = r.clk.t.Add(time.Millisecond)
		if a := r.read(regA); a&aUIP != 0 {
			t.Fatalf("register A = %#02x with UIP set: a guest would wait for it to clear", a)
		}
	}
	r.write(regA, aUIP|aDefault)
	r.expect("after the guest wrote UIP", field{regA, "register A", aDefault})
}

func TestNMIDisableBitIgnored(t *testing.T) {
	r := newRTC(t)
	// Linux's CMOS_READ writes the index with bit 7 set to keep NMIs off.
	r.expect("index with the NMI-disable bit",
		field{0x80 | regSeconds, "seconds", 0x56},
		field{0x80 | regMonth, "month", 0x01},
	)
	r.write(0x80|0x40, 0x77)
	r.expect("RAM written with the NMI-disable bit", field{0x40, "RAM byte 0x40", 0x77})
}

func TestRAMAndReadOnlyRegisters(t *testing.T) {
	r := newRTC(t)
	for i := uint8(0x0e); i < ramSize; i++ {
		if i != regCentury {
			r.write(i, i^0x5a)
		}
	}
	for i := uint8(0x0e); i < ramSize; i++ {
		if i != regCentury {
			r.expect("CMOS RAM", field{i, "RAM byte", i ^ 0x5a})
		}
	}
	r.write(regD, 0)
	r.write(regC, 0xff)
	r.expect("read-only registers", field{regD, "register D", dValidRAM}, field{regC, "register C", 0})
}

func TestOddAccessesAreHarmless(t *testing.T) {
	r := newRTC(t)
	b := []byte{1, 2}
	r.c.Read(offsetIndex, b)
	if b[0] != 0xff || b[1] != 0 {
		t.Errorf("index port reads % x, want ff 00", b)
	}
	r.c.Read(2, b)
	if b[0] != 0 || b[1] != 0 {
		t.Errorf("read past the data port = % x, want zeros", b)
	}
	r.c.Write(2, []byte{regSeconds})
	r.c.Write(offsetData, nil)
	r.c.Read(offsetData, nil)
	r.expect("after odd accesses", field{regSeconds, "seconds", 0x56})
}

// TestLinuxSetTime replays drivers/rtc/rtc-mc146818-lib.c mc146818_set_time:
// SET in register B, the fields from the year down, then SET cleared.
func TestLinuxSetTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    uint8
		to   time.Time
	}{
		// Written one at a time, month 2 with day 31 would roll to March.
		{"BCD, to 28 February", b24Hour, time.Date(2024, time.February, 28, 7, 8, 9, 0, time.UTC)},
		{"binary, to 30 April 2031", b24Hour | bBinary, time.Date(2031, time.April, 30, 23, 59, 58, 0, time.UTC)},
		{"BCD 12-hour, to 1999", 0, time.Date(1999, time.December, 31, 12, 30, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRTC(t)
			r.write(regB, tc.b)
			enc := func(v int) uint8 { return encode(v, tc.b) }
			save := r.read(regB)
			r.write(regB, save|bSet)
			r.clk.t = r.clk.t.Add(time.Second) // the clock holds still while SET
			r.expect("latched while SET", field{regSeconds, "seconds", enc(56)})
			r.write(regYear, enc(tc.to.Year()%100))
			r.write(regMonth, enc(int(tc.to.Month())))
			r.write(regDay, enc(tc.to.Day()))
			r.write(regHours, encodeHour(tc.to.Hour(), tc.b))
			r.write(regMinutes, enc(tc.to.Minute()))
			r.write(regSeconds, enc(tc.to.Second()))
			r.write(regCentury, enc(tc.to.Year()/100))
			r.write(regB, save)

			r.clk.t = r.clk.t.Add(3 * time.Second)
			want := tc.to.Add(3 * time.Second)
			r.expect("3 s after setting "+tc.to.String(),
				field{regSeconds, "seconds", enc(want.Second())},
				field{regMinutes, "minutes", enc(want.Minute())},
				field{regHours, "hours", encodeHour(want.Hour(), tc.b)},
				field{regWeekday, "weekday", enc(int(want.Weekday()) + 1)},
				field{regDay, "day", enc(want.Day())},
				field{regMonth, "month", enc(int(want.Month()))},
				field{regYear, "year", enc(want.Year() % 100)},
				field{regCentury, "century", enc(want.Year() / 100)},
			)
		})
	}
}

func TestSetOneFieldWithoutSET(t *testing.T) {
	r := newRTC(t)
	r.write(regMinutes, 0x10)
	r.expect("minutes written directly",
		field{regMinutes, "minutes", 0x10},
		field{regHours, "hours", 0x13},
		field{regSeconds, "seconds", 0x56},
	)
	r.clk.t = r.clk.t.Add(time.Hour)
	r.expect("an hour later", field{regMinutes, "minutes", 0x10}, field{regHours, "hours", 0x14})
}

func isBCD(v uint8) bool { return v>>4 <= 9 && v&0xf <= 9 }

func FuzzCMOS(f *testing.F) {
	// Each op is two bytes: the port offset (bit 7: a read) and the value.
	f.Add([]byte{0, regB, 1, bSet | b24Hour, 0, regMonth, 1, 0x02, 0, regB, 1, b24Hour, 0x81, 0})
	f.Add([]byte{0, 0x80 | regHours, 0x81, 0, 0, regB, 1, 0, 0x81, 0})
	f.Add([]byte{0, regCentury, 1, 0x99, 0, regYear, 1, 0xff, 0x81, 0, 5, 5})
	f.Fuzz(func(t *testing.T, ops []byte) {
		clk := &clock{start}
		c := New(clk.now)
		for ; len(ops) >= 2; ops = ops[2:] {
			offset := uint64(ops[0] & 0x7f)
			if ops[0]&0x80 != 0 {
				c.Read(offset, make([]byte, 1))
			} else {
				c.Write(offset, []byte{ops[1]})
			}
			clk.t = clk.t.Add(time.Duration(ops[1]) * time.Second)
		}
		read := func(i uint8) uint8 {
			c.Write(offsetIndex, []byte{i})
			b := make([]byte, 1)
			c.Read(offsetData, b)
			return b[0]
		}
		if a := read(regA); a&aUIP != 0 {
			t.Fatalf("register A = %#02x with UIP set", a)
		}
		b := read(regB)
		if b&(bSet|bBinary) != 0 {
			return
		}
		for _, i := range []uint8{regSeconds, regMinutes, regHours, regWeekday, regDay, regMonth, regYear, regCentury} {
			v := read(i)
			if i == regHours {
				v &^= hourPM
			}
			if !isBCD(v) {
				t.Fatalf("register %#02x = %#02x in BCD mode, not two decimal digits", i, v)
			}
		}
	})
}
