package machine

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/memory"
)

// kernel is a kernel file, parsed: a bzImage, entered at its 64-bit entry
// after its own decompressor has run, or an uncompressed ELF vmlinux,
// entered through PVH with nothing left to decompress.
type kernel struct {
	bz  *boot.Kernel
	elf *boot.Vmlinux
}

// openKernel opens the kernel at path and reads its headers, the way path
// asks; the file it returns stays open until load has read it into guest
// RAM.
func openKernel(path string, how BootPath, cacheDir string) (*os.File, kernel, error) {
	f, img, err := openImage(path)
	if err != nil {
		return nil, kernel{}, fmt.Errorf("kernel: %w", err)
	}
	k, kf, err := readKernel(img, how, cacheDir)
	if kf != nil {
		f.Close() // the extracted vmlinux is what load reads
		f = kf
	}
	if err != nil {
		f.Close()
		return nil, kernel{}, fmt.Errorf("kernel %q: %w", path, err)
	}
	return f, k, nil
}

// readKernel parses img as an ELF vmlinux or a bzImage and, for a bzImage
// booted through PVH, returns the file its vmlinux was extracted to.
func readKernel(img boot.Image, how BootPath, cacheDir string) (kernel, *os.File, error) {
	var k kernel
	var err error
	head := make([]byte, 4)
	if _, rerr := img.ReadAt(head, 0); rerr == nil && boot.IsELF(head) {
		if how == BootBzImage {
			return k, nil, errors.New("is an ELF vmlinux, which only a PVH boot takes: give its bzImage, or boot it through PVH (--boot pvh or auto)")
		}
		k.elf, err = boot.ReadVmlinux(img)
		return k, nil, err
	}
	if k.bz, err = boot.ReadKernel(img); err != nil || how != BootPVH {
		return k, nil, err
	}
	f, v, err := extractedVmlinux(img, k.bz, cacheDir)
	if err != nil {
		return k, nil, fmt.Errorf("boot through PVH: %w", err)
	}
	return kernel{elf: v}, f, nil
}

// load puts the kernel, initrd and command line in ram the way the
// kernel's format asks, and returns the boot vCPU's entry state.
func (k kernel) load(ram *memory.RAM, initrd boot.Image, cmdline string, rsdp memory.GuestAddress) (*boot.Entry, error) {
	if k.elf != nil {
		return boot.LoadPVH(ram, boot.PVHConfig{Kernel: k.elf, Initrd: initrd, Cmdline: cmdline, RSDP: rsdp})
	}
	return boot.Load(ram, boot.Config{Kernel: k.bz, Initrd: initrd, Cmdline: cmdline, RSDP: rsdp})
}

// openImage opens path as an image of its size when opened.
func openImage(path string) (*os.File, boot.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, io.NewSectionReader(f, 0, st.Size()), nil
}
