package main

import (
	"os"
	"path/filepath"
	"syscall"
)

// freeInitramfs deletes the initramfs's files before the container's root
// is moved over it, as switch_root does: underneath the new root they are
// out of reach but still hold their pages (init, busybox and the modules,
// about 9 MiB of the guest's memory, which free page reporting can then
// hand back to the host). It does not cross into mounts (/proc, /dev,
// the container's own) and keeps going past what it cannot delete: a
// file that stays only costs its memory.
func freeInitramfs() {
	var st syscall.Stat_t
	if err := syscall.Lstat("/", &st); err != nil {
		return
	}
	removeOnDevice("/", st.Dev)
}

// removeOnDevice removes what lies under dir on device dev, depth first;
// dir itself stays.
func removeOnDevice(dir string, dev uint64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil || st.Dev != dev {
			continue
		}
		if e.IsDir() {
			removeOnDevice(p, dev)
		}
		os.Remove(p) // a mount point or a busy directory stays
	}
}
