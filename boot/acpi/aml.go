package acpi

import "fmt"

// ISADevice is a legacy device the DSDT names with its ports and IRQ. With
// hardware-reduced ACPI Linux has no legacy PIC and maps no ISA IRQ by
// itself: a driver can request IRQ 4 only after PNP has found a device whose
// resources name it. Firecracker and Cloud Hypervisor describe their UARTs
// the same way.
type ISADevice struct {
	Name    string // four characters, e.g. "COM1"
	HID     string // EISA ID, e.g. "PNP0501" (16550A UART), "PNP0B00" (RTC)
	Port    uint16
	PortLen uint8
	IRQ     uint8 // 0 to 15
}

func (d ISADevice) validate() error {
	if !isNameSeg(d.Name) {
		return fmt.Errorf("ACPI device name %q: want four characters from A-Z, 0-9 and _, not starting with a digit", d.Name)
	}
	if _, err := eisaID(d.HID); err != nil {
		return err
	}
	if d.IRQ > 15 {
		return fmt.Errorf("ACPI device %s: IRQ %d is not an ISA IRQ", d.Name, d.IRQ)
	}
	if d.PortLen == 0 {
		return fmt.Errorf("ACPI device %s: no ports", d.Name)
	}
	if int(d.Port)+int(d.PortLen) > 0x10000 {
		return fmt.Errorf("ACPI device %s: %d ports from %#x run past 0xffff", d.Name, d.PortLen, d.Port)
	}
	return nil
}

// isNameSeg reports whether s is an AML NameSeg (ACPI 6.5, 20.2.2): a guest
// whose DSDT holds anything else rejects the whole table.
func isNameSeg(s string) bool {
	if len(s) != 4 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// AML opcodes and resource descriptor tags (ACPI 6.5, chapters 6.4 and 20).
const (
	amlZeroOp     = 0x00
	amlOneOp      = 0x01
	amlNameOp     = 0x08
	amlBytePfx    = 0x0a
	amlWordPfx    = 0x0b
	amlDWordPfx   = 0x0c
	amlQWordPfx   = 0x0e
	amlScopeOp    = 0x10
	amlBufferOp   = 0x11
	amlPackageOp  = 0x12
	amlRootChar   = '\\'
	amlExtOpPfx   = 0x5b
	amlDeviceOp   = 0x82
	resIO         = 0x47 // small item 0x08, 7 bytes
	resIODecode16 = 1
	resIRQ        = 0x22 // small item 0x04, 2 bytes: edge, active high
	resEndTag     = 0x79
)

// pkgLength encodes an AML PkgLength for a body of n bytes; the encoded
// length counts its own bytes.
func pkgLength(n int) []byte {
	if n+1 < 0x40 {
		return []byte{byte(n + 1)}
	}
	for extra := 1; extra <= 3; extra++ {
		total := n + 1 + extra
		if total < 1<<(4+8*extra) {
			b := []byte{byte(extra<<6) | byte(total&0xf)}
			for i := 0; i < extra; i++ {
				b = append(b, byte(total>>(4+8*i)))
			}
			return b
		}
	}
	panic("acpi: AML package too large") // tables here are a few hundred bytes
}

// eisaID compresses "PNP0501" into the 32-bit EISA ID AML stores.
func eisaID(id string) ([]byte, error) {
	if len(id) != 7 {
		return nil, fmt.Errorf("EISA ID %q: want three letters and four hex digits", id)
	}
	var b [4]byte
	var letters [3]byte
	for i := 0; i < 3; i++ {
		c := id[i]
		if c < 'A' || c > 'Z' {
			return nil, fmt.Errorf("EISA ID %q: %q is not an upper-case letter", id, c)
		}
		letters[i] = c - 'A' + 1
	}
	b[0] = letters[0]<<2 | letters[1]>>3
	b[1] = (letters[1]&7)<<5 | letters[2]
	for i := 0; i < 4; i++ {
		var v byte
		switch c := id[3+i]; {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return nil, fmt.Errorf("EISA ID %q: %q is not a hex digit", id, c)
		}
		b[2+i/2] |= v << (4 * (1 - i%2))
	}
	return b[:], nil
}

func amlName(name string, value []byte) []byte {
	return append(append([]byte{amlNameOp}, name...), value...)
}

// amlDevice is Device (NAME) { _HID, _UID, _CRS } for d.
func amlDevice(d ISADevice, uid byte) []byte {
	id, _ := eisaID(d.HID) // validated by Write
	crs := []byte{resIO, resIODecode16}
	crs = le.AppendUint16(crs, d.Port) // minimum
	crs = le.AppendUint16(crs, d.Port) // maximum
	crs = append(crs, 1, d.PortLen)    // alignment, length
	mask := uint16(1) << d.IRQ
	crs = append(crs, resIRQ, byte(mask), byte(mask>>8))
	crs = append(crs, resEndTag, 0) // checksum 0: "treat as correct"

	buf := append([]byte{amlBytePfx, byte(len(crs))}, crs...)
	var body []byte
	body = append(body, d.Name...)
	body = append(body, amlName("_HID", append([]byte{amlDWordPfx}, id...))...)
	body = append(body, amlName("_UID", []byte{amlBytePfx, uid})...)
	body = append(body, amlName("_CRS", append(append([]byte{amlBufferOp}, pkgLength(len(buf))...), buf...))...)
	return append(append([]byte{amlExtOpPfx, amlDeviceOp}, pkgLength(len(body))...), body...)
}

// amlScope is Scope (\NAME) { body }.
func amlScope(name string, body []byte) []byte {
	inner := append(append([]byte{amlRootChar}, name...), body...)
	return append(append([]byte{amlScopeOp}, pkgLength(len(inner))...), inner...)
}

// amlInteger is the shortest ComputationalData for v (ACPI 6.5, 20.2.3).
func amlInteger(v uint64) []byte {
	switch {
	case v == 0:
		return []byte{amlZeroOp}
	case v == 1:
		return []byte{amlOneOp}
	case v <= 0xff:
		return []byte{amlBytePfx, byte(v)}
	case v <= 0xffff:
		return le.AppendUint16([]byte{amlWordPfx}, uint16(v))
	case v <= 0xffffffff:
		return le.AppendUint32([]byte{amlDWordPfx}, uint32(v))
	}
	return le.AppendUint64([]byte{amlQWordPfx}, v)
}

// amlEISAID is EisaId (id) as iasl compiles it: a DWord.
func amlEISAID(id string) []byte {
	b, _ := eisaID(id) // callers pass constants, checked by tests
	return append([]byte{amlDWordPfx}, b...)
}

// amlPackage is Package () { elems... }; at most 255 elements.
func amlPackage(elems ...[]byte) []byte {
	body := []byte{byte(len(elems))}
	for _, e := range elems {
		body = append(body, e...)
	}
	return append(append([]byte{amlPackageOp}, pkgLength(len(body))...), body...)
}

// amlBuffer is Buffer () { data }.
func amlBuffer(data []byte) []byte {
	body := append(amlInteger(uint64(len(data))), data...)
	return append(append([]byte{amlBufferOp}, pkgLength(len(body))...), body...)
}

// amlDeviceOf is Device (name) { body }.
func amlDeviceOf(name string, body []byte) []byte {
	inner := append([]byte(name), body...)
	return append(append([]byte{amlExtOpPfx, amlDeviceOp}, pkgLength(len(inner))...), inner...)
}
