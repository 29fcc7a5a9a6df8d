// Package serial emulates a 16550A UART (TI PC16550D data sheet), the PC's
// COM port, as the guest's console: what the guest transmits goes to an
// io.Writer, what the user types is queued with Input.
package serial

import (
	"io"
	"sync"

	"github.com/govmm/govmm/devices"
)

// Register offsets (PC16550D table 2); DLL/DLM replace RBR/IER when LCR.DLAB is set.
const (
	regData = 0 // RBR (read), THR (write), DLL (DLAB)
	regIER  = 1 // IER, DLM (DLAB)
	regIIR  = 2 // IIR (read), FCR (write)
	regLCR  = 3
	regMCR  = 4
	regLSR  = 5
	regMSR  = 6
	regSCR  = 7
	size    = 8
)

// Register bits.
const (
	ierRDA  = 0x01 // received data available
	ierTHRE = 0x02 // transmitter holding register empty
	ierRLS  = 0x04 // receiver line status
	ierMask = 0x0f

	iirNone     = 0x01
	iirTHRE     = 0x02
	iirRDA      = 0x04
	iirRLS      = 0x06
	iirFIFOsOn  = 0xc0
	fcrEnable   = 0x01
	lcrDLAB     = 0x80
	mcrDTR      = 0x01
	mcrRTS      = 0x02
	mcrOUT1     = 0x04
	mcrOUT2     = 0x08 // gates the interrupt line on a PC
	mcrLoop     = 0x10
	mcrMask     = 0x1f
	lsrDR       = 0x01
	lsrOE       = 0x02
	lsrTHRE     = 0x20
	lsrTEMT     = 0x40
	msrCTS      = 0x10
	msrDSR      = 0x20
	msrRI       = 0x40
	msrDCD      = 0x80
	defaultDivL = 0x0c // 9600 baud
)

// maxRX bounds the bytes typed but not yet read by the guest.
const maxRX = 64 << 10

// Serial is one 16550A. Safe for concurrent use by vCPUs and an input goroutine.
type Serial struct {
	irq devices.IRQLine

	out io.ByteWriter

	mu                     sync.Mutex
	ier, lcr, mcr, scr     uint8
	dll, dlm, fcr          uint8
	rx                     []byte
	overrun, thrPending    bool
	level                  bool
	dropped, writeFailures uint64
}

// New returns a UART that raises irq and transmits to out, on the thread of
// the vCPU that wrote the byte: out must neither block nor make a system
// call per byte (govmm gives it a devices/conout.Output). A writer without
// WriteByte is given one byte at a time.
func New(irq devices.IRQLine, out io.Writer) *Serial {
	bw, ok := out.(io.ByteWriter)
	if !ok {
		bw = byteWriter{out}
	}
	return &Serial{irq: irq, out: bw, dll: defaultDivL}
}

type byteWriter struct{ io.Writer }

func (w byteWriter) WriteByte(b byte) error {
	_, err := w.Write([]byte{b})
	return err
}

// Input queues bytes as received on the line. Bytes past the receive buffer
// are dropped and flagged as an overrun, as a real UART does.
func (s *Serial) Input(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	room := maxRX - len(s.rx)
	if len(p) > room {
		s.dropped += uint64(len(p) - room)
		s.overrun = true
		p = p[:room]
	}
	s.rx = append(s.rx, p...)
	s.updateIRQ()
}

// Read serves a guest IN from the register at offset.
func (s *Serial) Read(offset uint64, data []byte) {
	clear(data)
	if offset >= size || len(data) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data[0] = s.readReg(offset)
	s.updateIRQ()
}

// Write serves a guest OUT to the register at offset.
func (s *Serial) Write(offset uint64, data []byte) {
	if offset >= size || len(data) == 0 {
		return
	}
	s.mu.Lock()
	tx, ok := s.writeReg(offset, data[0])
	s.updateIRQ()
	s.mu.Unlock()
	if ok {
		s.transmit(tx)
	}
}

func (s *Serial) readReg(offset uint64) uint8 {
	dlab := s.lcr&lcrDLAB != 0
	switch offset {
	case regData:
		if dlab {
			return s.dll
		}
		if len(s.rx) == 0 {
			return 0
		}
		b := s.rx[0]
		s.rx = s.rx[1:]
		if len(s.rx) == 0 {
			s.rx = nil // let the buffer go once drained
		}
		return b
	case regIER:
		if dlab {
			return s.dlm
		}
		return s.ier
	case regIIR:
		id := s.pending()
		if id == iirTHRE {
			s.thrPending = false // reading IIR acknowledges THRE
		}
		if s.fcr&fcrEnable != 0 {
			id |= iirFIFOsOn
		}
		return id
	case regLCR:
		return s.lcr
	case regMCR:
		return s.mcr
	case regLSR:
		lsr := uint8(lsrTHRE | lsrTEMT)
		if len(s.rx) > 0 {
			lsr |= lsrDR
		}
		if s.overrun {
			lsr |= lsrOE
			s.overrun = false
		}
		return lsr
	case regMSR:
		return s.msr()
	default:
		return s.scr
	}
}

// writeReg updates a register; it returns a byte to transmit, if any.
func (s *Serial) writeReg(offset uint64, v uint8) (uint8, bool) {
	dlab := s.lcr&lcrDLAB != 0
	switch offset {
	case regData:
		if dlab {
			s.dll = v
			return 0, false
		}
		s.thrPending = true // the byte leaves at once: THR is empty again
		if s.mcr&mcrLoop != 0 {
			if len(s.rx) < maxRX {
				s.rx = append(s.rx, v)
			} else {
				s.overrun = true // as Input does: a full receiver loses the byte
			}
			return 0, false
		}
		return v, true
	case regIER:
		if dlab {
			s.dlm = v
			return 0, false
		}
		if v&ierTHRE != 0 && s.ier&ierTHRE == 0 {
			s.thrPending = true // enabling THRE with THR empty interrupts at once
		}
		s.ier = v & ierMask
	case regIIR:
		s.fcr = v
	case regLCR:
		s.lcr = v
	case regMCR:
		s.mcr = v & mcrMask
	case regSCR:
		s.scr = v
	}
	return 0, false
}

// msr reports the modem lines: looped back from MCR in loopback mode,
// otherwise a connected, ready peer.
func (s *Serial) msr() uint8 {
	if s.mcr&mcrLoop == 0 {
		return msrDCD | msrDSR | msrCTS
	}
	var m uint8
	if s.mcr&mcrRTS != 0 {
		m |= msrCTS
	}
	if s.mcr&mcrDTR != 0 {
		m |= msrDSR
	}
	if s.mcr&mcrOUT1 != 0 {
		m |= msrRI
	}
	if s.mcr&mcrOUT2 != 0 {
		m |= msrDCD
	}
	return m
}

// pending is the highest-priority interrupt identification (PC16550D table 4).
func (s *Serial) pending() uint8 {
	switch {
	case s.ier&ierRLS != 0 && s.overrun:
		return iirRLS
	case s.ier&ierRDA != 0 && len(s.rx) > 0:
		return iirRDA
	case s.ier&ierTHRE != 0 && s.thrPending:
		return iirTHRE
	}
	return iirNone
}

// updateIRQ drives the line: high while an interrupt is pending and OUT2 is set.
func (s *Serial) updateIRQ() {
	level := s.pending() != iirNone && s.mcr&mcrOUT2 != 0 && s.mcr&mcrLoop == 0
	if level != s.level {
		s.level = level
		s.irq.SetLevel(level)
	}
}

// transmit sends a byte on; a byte the host output refuses is lost, as on a
// line nobody listens to, and counted.
func (s *Serial) transmit(b uint8) {
	if err := s.out.WriteByte(b); err != nil {
		s.mu.Lock()
		s.writeFailures++
		s.mu.Unlock()
	}
}
