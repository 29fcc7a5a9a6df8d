// Package boot implements two ways into Linux/x86. For a bzImage
// (Documentation/arch/x86/boot.rst) it parses the setup header, lays the
// kernel, initrd, command line, zero page and identity page tables out in
// guest RAM, and describes the 64-bit entry state as data (load.go). For
// an uncompressed ELF vmlinux it loads the segments and enters through PVH
// (elf.go, pvh.go); payload.go takes a bzImage's vmlinux out on the host.
package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrNotBzImage: the file is neither a bzImage nor, since it does not
	// start like an ELF file, a vmlinux.
	ErrNotBzImage = errors.New("not a Linux kernel: neither a bzImage (/boot/vmlinuz-*) nor an ELF vmlinux (is it an initrd?)")
	// ErrProtocol: the kernel's boot protocol is too old for a 64-bit entry.
	ErrProtocol = errors.New("kernel boot protocol too old")
	// ErrDoesNotFit: kernel, initrd or command line do not fit.
	ErrDoesNotFit = errors.New("does not fit")
)

// Setup header offsets in the image and in the zero page (boot.rst, "The
// Real-Mode Kernel Header").
const (
	hdrStart          = 0x1f1
	offSetupSects     = 0x1f1
	offBootFlag       = 0x1fe
	offJump           = 0x200
	offHeaderMagic    = 0x202
	offVersion        = 0x206
	offTypeOfLoader   = 0x210
	offLoadFlags      = 0x211
	offRamdiskImage   = 0x218
	offRamdiskSize    = 0x21c
	offHeapEndPtr     = 0x224
	offCmdLinePtr     = 0x228
	offInitrdAddrMax  = 0x22c
	offKernelAlign    = 0x230
	offRelocatable    = 0x234
	offXLoadFlags     = 0x236
	offCmdlineSize    = 0x238
	offPayloadOffset  = 0x248
	offPayloadLength  = 0x24c
	offPrefAddress    = 0x258
	offInitSize       = 0x260
	hdrMaxEnd         = 0x290 // the zero page's setup_header area ends here
	bootFlagMagic     = 0xaa55
	headerMagic       = 0x53726448 // "HdrS"
	minVersion        = 0x020c     // 2.12: xloadflags, so a 64-bit entry point
	xlfKernel64       = 1 << 0
	defaultSetupSects = 4
	sectorSize        = 512
)

// Kernel is a parsed bzImage.
type Kernel struct {
	Version         uint16 // boot protocol, e.g. 0x020f
	SetupSects      int
	LoadFlags       uint8
	XLoadFlags      uint16
	Relocatable     bool
	KernelAlignment uint32
	PrefAddress     uint64
	InitSize        uint32
	InitrdAddrMax   uint32
	CmdlineSize     uint32
	// PayloadOffset and PayloadLength place the compressed vmlinux within
	// the protected-mode kernel (protocol 2.08+; zero before).
	PayloadOffset, PayloadLength uint32

	header    []byte // the setup header, from 0x1f1, as the zero page wants it
	protected Image  // the protected-mode kernel, read into guest RAM by Load
}

// An Image is bytes Load copies into guest RAM: a section of a file, which
// the host kernel then copies from its page cache straight into guest
// memory, with no copy in govmm's heap; or bytes in memory.
// *io.SectionReader and *bytes.Reader are Images.
type Image interface {
	io.ReaderAt
	Size() int64
}

// ProtectedModeSize is the size of the part of the image loaded at 1 MiB or above.
func (k *Kernel) ProtectedModeSize() int { return int(k.protected.Size()) }

// ParseKernel validates a bzImage held in memory.
func ParseKernel(image []byte) (*Kernel, error) { return ReadKernel(bytes.NewReader(image)) }

// ReadKernel validates the bzImage in f, reading only its setup header; Load
// reads the rest. Every offset is checked against the image's size.
func ReadKernel(f Image) (*Kernel, error) {
	size := f.Size()
	head := make([]byte, min(size, hdrMaxEnd))
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the setup header: %w", err)
	}
	k, setupSize, err := parseHeader(head, size)
	if err != nil {
		return nil, err
	}
	// Debian appends a signature after the kernel; it is loaded with the
	// kernel and ignored by it.
	k.protected = io.NewSectionReader(f, setupSize, size-setupSize)
	if uint64(k.protected.Size()) > uint64(k.InitSize) {
		return nil, fmt.Errorf("%w: protected-mode kernel of %d bytes exceeds its init_size %d", ErrNotBzImage, k.protected.Size(), k.InitSize)
	}
	return k, nil
}

// parseHeader reads the setup header from image, the first bytes of a file
// of size bytes, and returns the setup's size: where the protected-mode
// kernel starts.
func parseHeader(image []byte, size int64) (*Kernel, int64, error) {
	if len(image) < offInitSize+4 {
		return nil, 0, fmt.Errorf("%w: %d bytes is too short for a setup header", ErrNotBzImage, size)
	}
	le := binary.LittleEndian
	if le.Uint16(image[offBootFlag:]) != bootFlagMagic || le.Uint32(image[offHeaderMagic:]) != headerMagic {
		return nil, 0, fmt.Errorf("%w: no boot signature 0xAA55 and \"HdrS\" magic", ErrNotBzImage)
	}
	k := &Kernel{
		Version:    le.Uint16(image[offVersion:]),
		SetupSects: int(image[offSetupSects]),
		LoadFlags:  image[offLoadFlags],
	}
	if k.Version < minVersion {
		return nil, 0, fmt.Errorf("%w: protocol %d.%02d, need 2.12 or later for a 64-bit entry point (Linux 3.8+)",
			ErrProtocol, k.Version>>8, k.Version&0xff)
	}
	k.XLoadFlags = le.Uint16(image[offXLoadFlags:])
	if k.XLoadFlags&xlfKernel64 == 0 {
		return nil, 0, fmt.Errorf("%w: the kernel has no 64-bit entry point (xloadflags %#x): give a 64-bit x86 kernel", ErrProtocol, k.XLoadFlags)
	}
	if k.SetupSects == 0 {
		k.SetupSects = defaultSetupSects
	}
	setupSize := int64(k.SetupSects+1) * sectorSize
	if setupSize >= size {
		return nil, 0, fmt.Errorf("%w: setup of %d bytes leaves no kernel in a %d-byte file", ErrNotBzImage, setupSize, size)
	}
	hdrEnd := offHeaderMagic + int(image[offJump+1])
	if hdrEnd > hdrMaxEnd || hdrEnd < offInitSize+4 {
		return nil, 0, fmt.Errorf("%w: setup header ends at %#x", ErrNotBzImage, hdrEnd)
	}
	k.Relocatable = image[offRelocatable] != 0
	k.KernelAlignment = le.Uint32(image[offKernelAlign:])
	k.PrefAddress = le.Uint64(image[offPrefAddress:])
	k.InitSize = le.Uint32(image[offInitSize:])
	k.InitrdAddrMax = le.Uint32(image[offInitrdAddrMax:])
	k.CmdlineSize = le.Uint32(image[offCmdlineSize:])
	k.PayloadOffset = le.Uint32(image[offPayloadOffset:])
	k.PayloadLength = le.Uint32(image[offPayloadLength:])
	k.header = image[hdrStart:hdrEnd]
	return k, setupSize, nil
}
