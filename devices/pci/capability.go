package pci

import "fmt"

// capability is one entry of the list: ID and next pointer, then the body.
type capability struct {
	off, size uint16 // size counts the two header bytes
}

// AddCapability appends a capability (PCI 3.0 §6.7) with the given ID and
// body, the bytes after the ID and next pointer, and returns its offset. The
// list starts after the header; each entry is dword aligned. The body is
// read-only to the guest unless SetWritable says otherwise.
func (c *ConfigSpace) AddCapability(id uint8, body []byte) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	off := uint16(headerSize)
	if n := len(c.caps); n > 0 {
		last := c.caps[n-1]
		off = (last.off + last.size + 3) &^ 3
	}
	if int(off)+2+len(body) > configSize {
		return 0, fmt.Errorf("capability %#x of %d bytes at %#x: %w", id, 2+len(body), off, ErrNoSpace)
	}
	if n := len(c.caps); n > 0 {
		c.regs[c.caps[n-1].off+1] = byte(off) // the previous entry's next pointer
	} else {
		c.regs[regCapabilitiesPtr] = byte(off)
		c.regs[regStatus] |= statusCapabilities
	}
	c.regs[off] = id
	copy(c.regs[off+2:], body)
	c.caps = append(c.caps, capability{off: off, size: uint16(2 + len(body))})
	return off, nil
}

// SetWritable lets the guest change the bits of mask at reg, which must lie
// inside one capability's body: MSI-X Message Control, say. Header bytes and
// list pointers stay read-only.
func (c *ConfigSpace) SetWritable(reg uint16, mask []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := int(reg) + len(mask)
	for _, cp := range c.caps {
		if int(reg) >= int(cp.off)+2 && end <= int(cp.off+cp.size) {
			copy(c.wmask[reg:], mask)
			return nil
		}
	}
	return fmt.Errorf("write mask for [%#x, %#x): %w", reg, end, ErrNotInCap)
}
