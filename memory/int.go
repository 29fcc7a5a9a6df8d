package memory

import "encoding/binary"

// ReadUint16 reads a little-endian value at addr.
func (m *RAM) ReadUint16(addr GuestAddress) (uint16, error) {
	var b [2]byte
	err := m.ReadAt(b[:], addr)
	return binary.LittleEndian.Uint16(b[:]), err
}

// ReadUint32 reads a little-endian value at addr.
func (m *RAM) ReadUint32(addr GuestAddress) (uint32, error) {
	var b [4]byte
	err := m.ReadAt(b[:], addr)
	return binary.LittleEndian.Uint32(b[:]), err
}

// ReadUint64 reads a little-endian value at addr.
func (m *RAM) ReadUint64(addr GuestAddress) (uint64, error) {
	var b [8]byte
	err := m.ReadAt(b[:], addr)
	return binary.LittleEndian.Uint64(b[:]), err
}

// WriteUint16 writes a little-endian value at addr.
func (m *RAM) WriteUint16(addr GuestAddress, v uint16) error {
	return m.WriteAt(binary.LittleEndian.AppendUint16(nil, v), addr)
}

// WriteUint32 writes a little-endian value at addr.
func (m *RAM) WriteUint32(addr GuestAddress, v uint32) error {
	return m.WriteAt(binary.LittleEndian.AppendUint32(nil, v), addr)
}

// WriteUint64 writes a little-endian value at addr.
func (m *RAM) WriteUint64(addr GuestAddress, v uint64) error {
	return m.WriteAt(binary.LittleEndian.AppendUint64(nil, v), addr)
}
