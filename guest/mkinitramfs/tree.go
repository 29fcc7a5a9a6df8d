package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/u-root/u-root/pkg/cpio"
	"golang.org/x/sys/unix"
)

// writeTree writes the records as files under dir, which must not exist.
// Device nodes need CAP_MKNOD and are skipped without it: a root file
// system gets /dev from the devtmpfs the initramfs's init moves there.
func writeTree(dir string, recs []cpio.Record) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("tree: %w", err)
	}
	for _, r := range recs {
		if err := writeRecord(filepath.Join(dir, r.Name), r); err != nil {
			return fmt.Errorf("tree: %s: %w", r.Name, err)
		}
	}
	return nil
}

func writeRecord(path string, r cpio.Record) error {
	perm := os.FileMode(r.Mode & 0o777)
	if r.Mode&unix.S_ISVTX != 0 {
		perm |= os.ModeSticky
	}
	switch r.Mode & cpio.S_IFMT {
	case cpio.S_IFDIR:
		if err := os.Mkdir(path, perm); err != nil {
			return err
		}
		return os.Chmod(path, perm) // past the umask, and the sticky bit
	case cpio.S_IFREG:
		b, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, b, perm); err != nil {
			return err
		}
		return os.Chmod(path, perm)
	case cpio.S_IFLNK:
		target, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		if err != nil {
			return err
		}
		return os.Symlink(string(target), path)
	case cpio.S_IFCHR:
		err := unix.Mknod(path, unix.S_IFCHR|uint32(perm), int(unix.Mkdev(uint32(r.Rmajor), uint32(r.Rminor))))
		if errors.Is(err, unix.EPERM) {
			return nil
		}
		return err
	}
	return fmt.Errorf("unsupported file mode %#o", r.Mode)
}
