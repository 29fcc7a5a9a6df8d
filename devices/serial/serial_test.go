package serial

import (
	"bytes"
	"errors"
	"testing"
)

// line is a fake IRQ line that records every level change.
type line struct {
	high    bool
	changes int
}

func (l *line) SetLevel(high bool) {
	if high != l.high {
		l.changes++
	}
	l.high = high
}

// uart wraps a Serial with the port accesses a guest driver makes.
type uart struct {
	t   *testing.T
	s   *Serial
	irq *line
	out *bytes.Buffer
}

func newUART(t *testing.T) *uart {
	u := &uart{t: t, irq: &line{}, out: &bytes.Buffer{}}
	u.s = New(u.irq, u.out)
	return u
}

func (u *uart) in(reg uint64) uint8 {
	data := []byte{0xee}
	u.s.Read(reg, data)
	return data[0]
}

func (u *uart) outb(reg uint64, v uint8) { u.s.Write(reg, []byte{v}) }

func (u *uart) expect(reg uint64, want uint8, why string) {
	u.t.Helper()
	if got := u.in(reg); got != want {
		u.t.Errorf("%s: register %d reads %#02x, want %#02x", why, reg, got, want)
	}
}

// TestLinuxAutoconfigSeesA16550A replays the probes of Linux's
// drivers/tty/serial/8250/8250_port.c autoconfig() and autoconfig_16550a().
func TestLinuxAutoconfigSeesA16550A(t *testing.T) {
	u := newUART(t)

	// Scratch register.
	for _, v := range []uint8{0xa5, 0x5a} {
		u.outb(regSCR, v)
		u.expect(regSCR, v, "scratch register")
	}
	// "Do a simple existence test first": IER's low nibble is writable.
	u.outb(regIER, 0)
	u.expect(regIER, 0, "IER cleared")
	u.outb(regIER, 0x0f)
	u.expect(regIER, 0x0f, "IER low nibble")
	u.outb(regIER, 0)

	// Loopback: MCR LOOP|OUT2|RTS loops back to MSR as DCD|CTS.
	u.outb(regMCR, mcrLoop|0x0a)
	if got := u.in(regMSR) & 0xf0; got != 0x90 {
		t.Errorf("MSR in loopback with OUT2|RTS = %#02x, want 0x90 (DCD|CTS)", got)
	}
	u.outb(regMCR, 0)

	// FIFO type: IIR bits 7:6 are 11 with FIFOs enabled, 00 without.
	u.outb(regIIR, fcrEnable)
	if got := u.in(regIIR) >> 6; got != 3 {
		t.Errorf("IIR>>6 with FIFOs enabled = %d, want 3 (16550A)", got)
	}
	u.outb(regIIR, 0)
	if got := u.in(regIIR) >> 6; got != 0 {
		t.Errorf("IIR>>6 with FIFOs disabled = %d, want 0", got)
	}
	u.outb(regIIR, fcrEnable)

	// No EFR: with LCR in configuration mode A or B, register 2 is not 0.
	for _, lcr := range []uint8{0x80, 0xbf} {
		u.outb(regLCR, lcr)
		if u.in(regIIR) == 0 {
			t.Errorf("register 2 with LCR %#02x reads 0: Linux would take the UART for an ST16C650/EFR part", lcr)
		}
	}
	// Not a TI16750: IIR bit 5 stays clear when 64-byte mode is asked for.
	for _, lcr := range []uint8{0, 0x80} {
		u.outb(regLCR, lcr)
		u.outb(regIIR, fcrEnable|0x20)
		if got := u.in(regIIR) & 0xe0; got != 0xc0 {
			t.Errorf("IIR & 0xe0 with LCR %#02x and FCR 64-byte mode = %#02x, want 0xc0", lcr, got)
		}
		u.outb(regIIR, fcrEnable)
	}
	u.outb(regLCR, 0)
	// Not an XScale: IER bit 6 (UUE) does not stick.
	u.outb(regIER, 0x40)
	if got := u.in(regIER); got&0x40 != 0 {
		t.Errorf("IER = %#02x after writing UUE, want bit 6 clear", got)
	}
	u.outb(regIER, 0)

	// Idle transmitter, nothing received.
	u.expect(regLSR, lsrTHRE|lsrTEMT, "idle LSR")
	// Linux's THRE test at startup: enabling THRI twice interrupts twice.
	for i := 0; i < 2; i++ {
		u.outb(regIER, ierTHRE)
		if got := u.in(regIIR) & 0x0f; got != iirTHRE {
			t.Errorf("IIR after enabling THRI (try %d) = %#x, want THRE: Linux would set UART_BUG_THRE", i, got)
		}
		u.outb(regIER, 0)
	}
	if u.out.Len() != 0 {
		t.Errorf("probing transmitted %q", u.out.Bytes())
	}
}

func TestLoopbackDataComesBack(t *testing.T) {
	u := newUART(t)
	u.outb(regMCR, mcrLoop|mcrOUT2)
	u.outb(regIER, ierRDA)
	u.outb(regData, 'x')
	if u.out.Len() != 0 {
		t.Errorf("loopback byte reached the console: %q", u.out.Bytes())
	}
	u.expect(regLSR, lsrTHRE|lsrTEMT|lsrDR, "LSR after a looped-back byte")
	u.expect(regIIR, iirRDA, "IIR after a looped-back byte")
	if u.irq.high {
		t.Error("IRQ line raised in loopback mode, where OUT2 is disconnected from the pin")
	}
	u.expect(regData, 'x', "looped-back byte")
	u.expect(regLSR, lsrTHRE|lsrTEMT, "LSR after reading it")
}

func TestTHREInterrupt(t *testing.T) {
	u := newUART(t)
	u.outb(regIER, ierTHRE)
	if u.irq.high {
		t.Error("IRQ line high without MCR OUT2, which gates it on a PC")
	}
	u.outb(regMCR, mcrOUT2|mcrDTR|mcrRTS)
	if !u.irq.high {
		t.Fatal("IRQ line low with THRI enabled, THR empty and OUT2 set")
	}
	u.expect(regIIR, iirTHRE, "pending THRE")
	if u.irq.high {
		t.Error("IRQ line still high after reading IIR, which acknowledges THRE")
	}
	u.expect(regIIR, iirNone, "after the acknowledgement")

	u.outb(regData, 'A')
	if !u.irq.high {
		t.Error("IRQ line low after a transmitted byte left THR empty again")
	}
	u.expect(regIIR, iirTHRE, "after transmitting")
	u.outb(regIER, 0)
	if u.irq.high {
		t.Error("IRQ line high with IER cleared")
	}
	if got := u.out.String(); got != "A" {
		t.Errorf("console got %q, want %q", got, "A")
	}
}

func TestReceiveInterrupt(t *testing.T) {
	u := newUART(t)
	u.outb(regMCR, mcrOUT2)
	u.outb(regIER, ierRDA)
	u.s.Input([]byte("hi"))
	if !u.irq.high {
		t.Fatal("IRQ line low with received data and RDA enabled")
	}
	u.expect(regIIR, iirRDA, "received data")
	u.expect(regLSR, lsrTHRE|lsrTEMT|lsrDR, "LSR with data")
	u.expect(regData, 'h', "first byte")
	if !u.irq.high {
		t.Error("IRQ line dropped with a byte still unread")
	}
	u.expect(regData, 'i', "second byte")
	if u.irq.high {
		t.Error("IRQ line high with the receive buffer drained")
	}
	u.expect(regIIR, iirNone, "after draining")
	u.expect(regLSR, lsrTHRE|lsrTEMT, "LSR after draining")
	u.expect(regData, 0, "empty receive buffer")
}

func TestReceiveBeatsTransmitInPriority(t *testing.T) {
	u := newUART(t)
	u.outb(regMCR, mcrOUT2)
	u.outb(regIER, ierRDA|ierTHRE)
	u.s.Input([]byte("z"))
	u.expect(regIIR, iirRDA, "RDA over THRE (PC16550D table 4)")
	u.expect(regData, 'z', "received byte")
	u.expect(regIIR, iirTHRE, "THRE once the data is read")
	u.expect(regIIR, iirNone, "THRE acknowledged")
}

func TestDivisorLatch(t *testing.T) {
	u := newUART(t)
	u.outb(regLCR, lcrDLAB|0x03)
	u.expect(regData, defaultDivL, "DLL at reset (9600 baud)")
	u.expect(regIER, 0, "DLM at reset")
	u.outb(regData, 0x01) // 115200 baud
	u.outb(regIER, 0x02)
	u.expect(regData, 0x01, "DLL")
	u.expect(regIER, 0x02, "DLM")
	u.expect(regLCR, lcrDLAB|0x03, "LCR")
	u.outb(regLCR, 0x03)
	u.expect(regIER, 0, "IER is not the divisor")
	if u.out.Len() != 0 {
		t.Errorf("divisor writes were transmitted: %q", u.out.Bytes())
	}
	u.outb(regData, 'k')
	if got := u.out.String(); got != "k" {
		t.Errorf("console got %q after clearing DLAB, want %q", got, "k")
	}
}

func TestOverrun(t *testing.T) {
	u := newUART(t)
	u.outb(regMCR, mcrOUT2)
	u.outb(regIER, ierRLS)
	u.s.Input(bytes.Repeat([]byte{'a'}, maxRX-1))
	u.expect(regLSR, lsrTHRE|lsrTEMT|lsrDR, "full buffer, nothing lost yet")
	if u.irq.high {
		t.Error("IRQ line high before any overrun")
	}
	u.s.Input([]byte("bcd"))
	if !u.irq.high {
		t.Error("IRQ line low after an overrun with RLS enabled")
	}
	u.expect(regIIR, iirRLS, "overrun")
	u.expect(regLSR, lsrTHRE|lsrTEMT|lsrDR|lsrOE, "LSR after an overrun")
	u.expect(regLSR, lsrTHRE|lsrTEMT|lsrDR, "reading LSR clears OE")
	if u.irq.high {
		t.Error("IRQ line high after LSR was read")
	}
	if u.s.dropped != 2 {
		t.Errorf("%d bytes counted as dropped, want 2", u.s.dropped)
	}
	n := 0
	for u.in(regLSR)&lsrDR != 0 {
		u.in(regData)
		n++
	}
	if n != maxRX {
		t.Errorf("read %d bytes back, want the buffer's %d", n, maxRX)
	}
}

func TestLoopbackOverrun(t *testing.T) {
	u := newUART(t)
	u.s.Input(bytes.Repeat([]byte{'a'}, maxRX))
	u.outb(regMCR, mcrLoop)
	u.outb(regData, 'b')
	if len(u.s.rx) != maxRX {
		t.Errorf("receive buffer holds %d bytes, want at most %d", len(u.s.rx), maxRX)
	}
	u.expect(regLSR, lsrTHRE|lsrTEMT|lsrDR|lsrOE, "LSR after a looped-back byte found the buffer full")
}

// The console's input goroutine and the vCPUs share the UART; run with -race.
func TestConcurrentInputAndGuestReads(t *testing.T) {
	u := newUART(t)
	u.outb(regMCR, mcrOUT2)
	u.outb(regIER, ierRDA|ierTHRE)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			u.s.Input([]byte("abc"))
		}
	}()
	got := 0
	for got < 3000 {
		b := []byte{0}
		u.s.Read(regLSR, b)
		if b[0]&lsrDR != 0 {
			u.s.Read(regData, b)
			got++
		}
		u.s.Write(regData, []byte{'.'})
	}
	<-done
	if got != 3000 || u.s.dropped != 0 {
		t.Errorf("guest read %d of 3000 bytes, %d dropped", got, u.s.dropped)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("console gone") }

func TestTransmitFailureIsCounted(t *testing.T) {
	s := New(&line{}, failingWriter{})
	s.Write(regData, []byte{'x'})
	if s.writeFailures != 1 {
		t.Errorf("%d write failures counted, want 1", s.writeFailures)
	}
}

func TestOddAccessesAreHarmless(t *testing.T) {
	u := newUART(t)
	u.s.Read(regLSR, nil)
	u.s.Write(regData, nil)
	data := []byte{1, 2, 3, 4}
	u.s.Read(size, data)
	if !bytes.Equal(data, []byte{0, 0, 0, 0}) {
		t.Errorf("read past the registers = % x, want zeros", data)
	}
	u.s.Write(size, []byte{'x'})
	data = []byte{1, 2, 3, 4}
	u.s.Read(regLSR, data)
	if !bytes.Equal(data, []byte{lsrTHRE | lsrTEMT, 0, 0, 0}) {
		t.Errorf("4-byte read of LSR = % x, want LSR then zeros", data)
	}
	if u.out.Len() != 0 {
		t.Errorf("odd accesses transmitted %q", u.out.Bytes())
	}
}

func FuzzSerial(f *testing.F) {
	// Each op is two bytes. The first is a register read (bit 7), input of
	// up to 31 bytes or, with bit 5, a whole buffer's worth (bit 6), or a
	// register write; bits 2:0 pick the register. The second is the value.
	f.Add([]byte{regSCR, 0xa5, 0x80 | regSCR, 0, regMCR, 0x1a, 0x80 | regMSR, 0})
	f.Add([]byte{regMCR, 0x08, regIER, 0x0f, 0x40, 'a', 0x80 | regIIR, 0, 0x80 | regData, 0})
	f.Add([]byte{regLCR, 0x80, regData, 1, regIER, 0, regLCR, 3, regData, 'x'})
	// The input of each op, made once per value: a whole buffer's worth
	// made anew for each op cost most of an execution. Input copies it.
	var inputs [256][]byte
	f.Fuzz(func(t *testing.T, ops []byte) {
		irq := &line{}
		var out bytes.Buffer
		s := New(irq, &out)
		writes := 0
		for ; len(ops) >= 2; ops = ops[2:] {
			reg, v := uint64(ops[0]&7), ops[1]
			switch {
			case ops[0]&0x40 != 0:
				n := int(ops[0] & 0x1f)
				if ops[0]&0x20 != 0 {
					n = maxRX
				}
				if inputs[v] == nil {
					inputs[v] = bytes.Repeat([]byte{v}, maxRX)
				}
				s.Input(inputs[v][:n])
			case ops[0]&0x80 != 0:
				s.Read(reg, make([]byte, 1+int(v%4)))
			default:
				if reg == regData && s.lcr&lcrDLAB == 0 && s.mcr&mcrLoop == 0 {
					writes++
				}
				s.Write(reg, []byte{v})
			}
			if len(s.rx) > maxRX {
				t.Fatalf("receive buffer grew to %d bytes, past %d", len(s.rx), maxRX)
			}
			want := s.pending() != iirNone && s.mcr&mcrOUT2 != 0 && s.mcr&mcrLoop == 0
			if irq.high != want {
				t.Fatalf("IRQ line %v, want %v (IIR %#x, MCR %#x)", irq.high, want, s.pending(), s.mcr)
			}
		}
		if out.Len() != writes {
			t.Fatalf("console got %d bytes for %d THR writes", out.Len(), writes)
		}
	})
}
