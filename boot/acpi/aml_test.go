package acpi

import (
	"bytes"
	"fmt"
	"testing"
)

// decodePkgLength reads an AML PkgLength (ACPI 6.5, 20.2.4): the value, which
// counts the encoding's own bytes, and the encoding's size.
func decodePkgLength(b []byte) (int, int, error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("no PkgLength")
	}
	extra := int(b[0] >> 6)
	if extra == 0 {
		return int(b[0] & 0x3f), 1, nil
	}
	if b[0]&0x30 != 0 {
		return 0, 0, fmt.Errorf("PkgLength lead byte %#02x has bits 5:4 set", b[0])
	}
	if len(b) < 1+extra {
		return 0, 0, fmt.Errorf("PkgLength of %d bytes truncated", 1+extra)
	}
	n := int(b[0] & 0xf)
	for i := 0; i < extra; i++ {
		n |= int(b[1+i]) << (4 + 8*i)
	}
	return n, 1 + extra, nil
}

func TestPkgLength(t *testing.T) {
	for _, tc := range []struct {
		body int
		want []byte
	}{
		{0, []byte{0x01}},
		{7, []byte{0x08}},
		{62, []byte{0x3f}},                    // the largest one-byte length
		{63, []byte{0x41, 0x04}},              // 63+2 = 0x041
		{4093, []byte{0x4f, 0xff}},            // 4093+2 = 0xfff, the largest two-byte length
		{4094, []byte{0x81, 0x00, 0x01}},      // 4094+3 = 0x1001
		{1<<20 - 4, []byte{0x8f, 0xff, 0xff}}, // 0xfffff
		{1<<20 - 3, []byte{0xc1, 0, 0, 0x01}}, // 0x100001
	} {
		got := pkgLength(tc.body)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("pkgLength(%d) = % x, want % x", tc.body, got, tc.want)
		}
	}
	for _, n := range []int{0, 1, 62, 63, 64, 100, 4093, 4094, 4095, 70000, 1<<20 - 3, 1<<28 - 5} {
		enc := pkgLength(n)
		v, size, err := decodePkgLength(enc)
		if err != nil || size != len(enc) || v != n+len(enc) {
			t.Errorf("pkgLength(%d) = % x decodes to %d (%d bytes, %v), want %d", n, enc, v, size, err, n+len(enc))
		}
	}
}

func TestEISAID(t *testing.T) {
	for id, want := range map[string][]byte{
		"PNP0501": {0x41, 0xd0, 0x05, 0x01}, // 16550A UART
		"PNP0B00": {0x41, 0xd0, 0x0b, 0x00}, // AT real-time clock
		"PNP0303": {0x41, 0xd0, 0x03, 0x03}, // i8042 keyboard
		"AAA0000": {0x04, 0x21, 0x00, 0x00},
		"ZZZFFFF": {0x6b, 0x5a, 0xff, 0xff},
	} {
		got, err := eisaID(id)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("eisaID(%q) = % x, %v; want % x", id, got, err, want)
		}
	}
	for _, id := range []string{"", "PNP050", "PNP05011", "pnp0501", "PN@0501", "PNP05g1", "PNP05:1"} {
		if got, err := eisaID(id); err == nil {
			t.Errorf("eisaID(%q) = % x, want an error", id, got)
		}
	}
}

// aml is a decoder for the AML the DSDT holds: names and devices in scopes,
// with byte, dword, zero, buffer and package values. It checks every
// PkgLength against the bytes it encloses.
type aml struct {
	names map[string][]byte // path ("\_SB_.COM1._HID") to the encoded value
	order []string
}

func decodeAML(b []byte) (*aml, error) {
	a := &aml{names: map[string][]byte{}}
	return a, a.termList(b, `\`)
}

func (a *aml) termList(b []byte, scope string) error {
	for len(b) > 0 {
		n, err := a.term(b, scope)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// pkg splits off a PkgLength-delimited body after an opcode of opLen bytes.
func pkg(b []byte, opLen int) (body []byte, total int, err error) {
	v, size, err := decodePkgLength(b[opLen:])
	if err != nil {
		return nil, 0, err
	}
	if v < size || opLen+v > len(b) {
		return nil, 0, fmt.Errorf("PkgLength %d runs past the %d bytes left", v, len(b)-opLen)
	}
	return b[opLen+size : opLen+v], opLen + v, nil
}

func join(scope, name string) string {
	if scope == `\` {
		return scope + name
	}
	return scope + "." + name
}

func (a *aml) term(b []byte, scope string) (int, error) {
	switch {
	case b[0] == amlScopeOp:
		body, n, err := pkg(b, 1)
		if err != nil {
			return 0, err
		}
		if len(body) < 5 || body[0] != amlRootChar {
			return 0, fmt.Errorf("scope name % x is not \\NAME", body)
		}
		return n, a.termList(body[5:], `\`+string(body[1:5]))
	case b[0] == amlExtOpPfx && len(b) > 1 && b[1] == amlDeviceOp:
		body, n, err := pkg(b, 2)
		if err != nil {
			return 0, err
		}
		if len(body) < 4 {
			return 0, fmt.Errorf("device with no name")
		}
		path := join(scope, string(body[:4]))
		a.order = append(a.order, path)
		return n, a.termList(body[4:], path)
	case b[0] == amlNameOp && len(b) >= 6:
		path := join(scope, string(b[1:5]))
		size, err := dataSize(b[5:])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		a.names[path] = b[5 : 5+size]
		a.order = append(a.order, path)
		return 5 + size, nil
	}
	return 0, fmt.Errorf("unexpected AML % x", b[:min(len(b), 8)])
}

// dataSize is the length of one DataRefObject.
func dataSize(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("no value")
	}
	switch b[0] {
	case amlZeroOp, amlOneOp, amlBytePfx, amlWordPfx, amlDWordPfx, amlQWordPfx:
		_, n, err := integer(b)
		return n, err
	case amlBufferOp:
		body, n, err := pkg(b, 1)
		if err != nil {
			return 0, err
		}
		size, m, err := integer(body)
		if err != nil || size != uint64(len(body)-m) {
			return 0, fmt.Errorf("buffer size % x does not match its %d bytes (%v)", body[:min(m, len(body))], len(body)-m, err)
		}
		return n, nil
	case amlPackageOp:
		body, n, err := pkg(b, 1)
		if err != nil {
			return 0, err
		}
		elems, rest := int(body[0]), body[1:]
		for i := 0; i < elems; i++ {
			size, err := dataSize(rest)
			if err != nil {
				return 0, err
			}
			rest = rest[size:]
		}
		if len(rest) != 0 {
			return 0, fmt.Errorf("package has %d bytes after its %d elements", len(rest), elems)
		}
		return n, nil
	}
	return 0, fmt.Errorf("unexpected data % x", b[:min(len(b), 8)])
}

// integer decodes a ComputationalData integer: its value and encoded size.
func integer(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("no integer")
	}
	size := map[byte]int{amlZeroOp: 0, amlOneOp: 0, amlBytePfx: 1, amlWordPfx: 2, amlDWordPfx: 4, amlQWordPfx: 8}
	n, ok := size[b[0]]
	if !ok || len(b) < 1+n {
		return 0, 0, fmt.Errorf("integer % x truncated or unknown", b[:min(len(b), 9)])
	}
	if n == 0 {
		return uint64(b[0]), 1, nil
	}
	var v uint64
	for i := n; i >= 1; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, 1 + n, nil
}

// resources splits a _CRS buffer into its resource descriptors (ACPI 6.5,
// 6.4), small and large, the last of which must be the end tag.
func resources(buf []byte) ([][]byte, error) {
	body, _, err := pkg(buf, 1)
	if err != nil {
		return nil, err
	}
	_, m, err := integer(body)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for b := body[m:]; len(b) > 0; {
		n := 1 + int(b[0]&7)
		if b[0]&0x80 != 0 {
			if len(b) < 3 {
				return nil, fmt.Errorf("large descriptor % x truncated", b)
			}
			n = 3 + int(le.Uint16(b[1:]))
		}
		if n > len(b) {
			return nil, fmt.Errorf("descriptor % x truncated", b)
		}
		out = append(out, b[:n])
		if b[0] == resEndTag && n != len(b) {
			return nil, fmt.Errorf("%d bytes after the end tag", len(b)-n)
		}
		b = b[n:]
	}
	if len(out) == 0 || out[len(out)-1][0] != resEndTag {
		return nil, fmt.Errorf("no end tag")
	}
	return out, nil
}
