package machine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/govmm/govmm/boot"
)

// extractedVmlinux returns the ELF vmlinux inside the bzImage img, for a
// PVH boot that skips the guest's decompressor. With a cache directory the
// vmlinux is extracted once and kept there under the bzImage's content
// hash; an entry that does not read as the kernel's vmlinux (cut short,
// overwritten) is extracted again. Without one it goes to a temporary file
// that is gone once closed. The file stays open until the kernel is loaded.
func extractedVmlinux(img boot.Image, k *boot.Kernel, cacheDir string) (*os.File, *boot.Vmlinux, error) {
	if cacheDir == "" {
		f, err := os.CreateTemp("", "govmm-vmlinux-")
		if err != nil {
			return nil, nil, err
		}
		os.Remove(f.Name()) // unlinked: the open file is all there is
		return extractInto(f, k)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(img, 0, img.Size())); err != nil {
		return nil, nil, err
	}
	path := filepath.Join(cacheDir, "vmlinux-"+hex.EncodeToString(h.Sum(nil))[:32])
	if f, v, err := openVmlinux(path); err == nil {
		return f, v, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("vmlinux cache: %w", err)
	}
	tmp, err := os.CreateTemp(cacheDir, "vmlinux-*.tmp")
	if err != nil {
		return nil, nil, fmt.Errorf("vmlinux cache: %w", err)
	}
	if _, err := k.ExtractVmlinux(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, nil, err
	}
	// Complete before it has its name: a reader never sees half a file.
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return nil, nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return nil, nil, fmt.Errorf("vmlinux cache: %w", err)
	}
	return openVmlinux(path)
}

// extractInto extracts k's vmlinux into f and reads it back.
func extractInto(f *os.File, k *boot.Kernel) (*os.File, *boot.Vmlinux, error) {
	n, err := k.ExtractVmlinux(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	v, err := boot.ReadVmlinux(io.NewSectionReader(f, 0, n))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("the extracted vmlinux: %w", err)
	}
	return f, v, nil
}

func openVmlinux(path string) (*os.File, *boot.Vmlinux, error) {
	f, img, err := openImage(path)
	if err != nil {
		return nil, nil, err
	}
	v, err := boot.ReadVmlinux(img)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, v, nil
}
