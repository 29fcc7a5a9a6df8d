package boot

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/govmm/govmm/boot/internal/lzo"
)

// ErrPayload: the bzImage's compressed vmlinux cannot be taken out here.
var ErrPayload = errors.New("cannot extract the bzImage's vmlinux")

// The compressions Linux offers for its payload, by their magic
// (arch/x86/boot/compressed/Makefile, and each format's own header).
var payloadMagics = []struct {
	name  string
	magic []byte
}{
	{"gzip", []byte{0x1f, 0x8b}},
	{"bzip2", []byte("BZh")},
	{"lz4", []byte{0x02, 0x21, 0x4c, 0x18}}, // the legacy frame, as `lz4 -l` writes
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{"lzma", []byte{0x5d, 0x00, 0x00}},
	{"lzo", []byte{0x89, 'L', 'Z', 'O'}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
}

// Compression names the payload's compression ("lz4", "xz", ...).
func (k *Kernel) Compression() (string, error) {
	p, err := k.payload()
	if err != nil {
		return "", err
	}
	return compression(p)
}

// compression names p's compression by its first bytes.
func compression(p *io.SectionReader) (string, error) {
	head := make([]byte, 8)
	n, _ := p.ReadAt(head, 0)
	for _, m := range payloadMagics {
		if bytes.HasPrefix(head[:n], m.magic) {
			return m.name, nil
		}
	}
	return "", fmt.Errorf("%w: its payload starts % x, no compression Linux uses", ErrPayload, head[:n])
}

// payload is the compressed vmlinux, checked to lie within the kernel.
func (k *Kernel) payload() (*io.SectionReader, error) {
	if k.Version < 0x0208 || k.PayloadLength == 0 {
		return nil, fmt.Errorf("%w: the kernel names no payload (boot protocol %d.%02d)", ErrPayload, k.Version>>8, k.Version&0xff)
	}
	off, n := int64(k.PayloadOffset), int64(k.PayloadLength)
	if off+n > k.protected.Size() {
		return nil, fmt.Errorf("%w: payload [%d, +%d) is past the %d-byte kernel", ErrPayload, off, n, k.protected.Size())
	}
	return io.NewSectionReader(k.protected, off, n), nil
}

// maxVmlinux bounds what a payload may decompress to: Debian's largest
// kernels are about 70 MB; a payload that says more is refused rather than
// filling the disk.
const maxVmlinux = 512 << 20

// ExtractVmlinux decompresses the bzImage's payload, an ELF vmlinux, to w
// and returns its size. Linux's build appends the uncompressed size to
// the payload as a 32-bit little-endian word; the output must match it,
// start as an ELF file does, and pass every check its compression has.
func (k *Kernel) ExtractVmlinux(w io.Writer) (int64, error) {
	p, err := k.payload()
	if err != nil {
		return 0, err
	}
	kind, err := compression(p)
	if err != nil {
		return 0, err
	}
	if p.Size() < 4 {
		return 0, fmt.Errorf("%w: a %d-byte payload", ErrPayload, p.Size())
	}
	tail := make([]byte, 4)
	if _, err := p.ReadAt(tail, p.Size()-4); err != nil {
		return 0, err
	}
	want := int64(binary.LittleEndian.Uint32(tail))
	if want > maxVmlinux {
		return 0, fmt.Errorf("%w: the payload says it holds %d bytes", ErrPayload, want)
	}
	if want < int64(len(elfMagic)) {
		return 0, fmt.Errorf("%w: the payload says it holds %d bytes, too few for an ELF vmlinux", ErrPayload, want)
	}
	body := io.NewSectionReader(p, 0, p.Size()-4)
	r, err := decompress(kind, body, want)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrPayload, kind, err)
	}
	defer r.Close()
	head := make([]byte, len(elfMagic))
	if _, err := io.ReadFull(r, head); err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrPayload, kind, err)
	}
	if !IsELF(head) {
		return 0, fmt.Errorf("%w: the %s payload does not decompress to an ELF vmlinux: it starts % x", ErrPayload, kind, head)
	}
	n, err := io.Copy(w, io.MultiReader(bytes.NewReader(head), io.LimitReader(r, want+1-int64(len(head)))))
	if err != nil {
		return n, fmt.Errorf("%w: %s: %v", ErrPayload, kind, err)
	}
	if n != want {
		return n, fmt.Errorf("%w: %s payload gave %d bytes, its trailer says %d", ErrPayload, kind, n, want)
	}
	return n, nil
}

// decompress reads body, the payload without its size trailer, as kind
// compresses it; want bounds what it may allocate.
func decompress(kind string, body io.Reader, want int64) (io.ReadCloser, error) {
	switch kind {
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		return zr, nil
	case "bzip2":
		return io.NopCloser(bzip2.NewReader(body)), nil
	case "lz4":
		return lz4Closer{lz4.NewReader(body)}, nil
	case "xz":
		zr, err := newXZReader(body, want)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(zr), nil
	case "lzma":
		zr, err := newLZMAReader(body, want)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(zr), nil
	case "lzo":
		zr, err := lzo.NewReader(body)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(zr), nil
	case "zstd":
		// One goroutine, the caller's; the window, which zstd -22 sets
		// to 128 MiB whatever the input, bounded as the output is.
		zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxVmlinux))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return nil, errors.New("this compression is not supported here (gzip, bzip2, LZ4, LZMA, LZO, XZ and ZSTD are); boot the bzImage as it is")
}

// lz4Closer gives the reader's buffers back to lz4's pool when closed: a
// legacy frame, as Linux writes, takes two of 8 MiB, which the reader
// returns itself only at the end of a good stream.
type lz4Closer struct{ *lz4.Reader }

func (r lz4Closer) Close() error {
	r.Reset(nil)
	return nil
}
