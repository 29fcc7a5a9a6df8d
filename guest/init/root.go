package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// The Debian cloud kernel has ext4 built in but virtio_blk as a module, so
// it cannot mount root=/dev/vda itself. Booted with an initramfs, it runs
// our /init and ignores root=; init then does what an initramfs does: load
// the modules, mount root= (rootfstype=, default ext4; read-only unless rw
// is on the command line, as the kernel would) and switch to it. The image
// holds the same init, which finds itself on a disk and carries on.

// newRoot is where the root file system is mounted before the switch.
const newRoot = "/newroot"

// specialMounts are mountAll's file systems, which move into the new root.
func specialMounts() []string { return []string{"/dev", "/proc", "/sys", "/tmp"} }

// rootRequest returns the root= device when init runs from the initramfs.
func rootRequest(params map[string]string) (string, bool) {
	dev := params["root"]
	if dev == "" {
		return "", false
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return "", false
	}
	return dev, st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}

// switchRoot mounts dev and execs its init; it returns only on failure,
// with the reason as a "root" check.
func switchRoot(dev string, params map[string]string) report.Check {
	fstype := params["rootfstype"]
	if fstype == "" {
		fstype = "ext4"
	}
	flags, mode := uintptr(unix.MS_RDONLY), "ro"
	if _, rw := params["rw"]; rw {
		flags, mode = 0, "rw"
	}
	fields := []report.Field{kv("dev", dev), kv("fstype", fstype), kv("mode", mode)}
	init, err := mountRoot(dev, fstype, flags)
	if err == nil {
		fmt.Println(report.Check{Name: "root", OK: true, Detail: report.FormatFields(append(fields, kv("init", init))...)}.Line())
		err = enterRoot(init)
	}
	return report.Check{Name: "root", Detail: report.FormatFields(append(fields, kv("error", err))...)}
}

// mountRoot mounts dev on newRoot and returns the init to run there.
func mountRoot(dev, fstype string, flags uintptr) (string, error) {
	if err := waitFor(dev, deviceWait); err != nil {
		return "", err
	}
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return "", err
	}
	if err := unix.Mount(dev, newRoot, fstype, flags, ""); err != nil {
		return "", fmt.Errorf("mount %s (%s) on %s: %w", dev, fstype, newRoot, err)
	}
	for _, m := range specialMounts() {
		if fi, err := os.Stat(newRoot + m); err != nil || !fi.IsDir() {
			return "", errors.Join(fmt.Errorf("%s has no %s directory to move %s into", dev, m, m), unix.Unmount(newRoot, 0))
		}
	}
	for _, init := range []string{"/sbin/init", "/init"} {
		if _, err := os.Stat(newRoot + init); err == nil {
			return init, nil
		}
	}
	return "", errors.Join(fmt.Errorf("%s has neither /sbin/init nor /init", dev), unix.Unmount(newRoot, 0))
}

// enterRoot moves the special mounts and newRoot over /, frees the
// initramfs and execs init (busybox switch_root's steps).
func enterRoot(init string) error {
	for _, m := range specialMounts() {
		if err := unix.Mount(m, newRoot+m, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s into the new root: %w", m, err)
		}
	}
	emptyInitramfs()
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	return fmt.Errorf("exec %s: %w", init, unix.Exec(init, []string{init}, os.Environ()))
}

// emptyInitramfs removes the initramfs's files, which would otherwise stay
// in RAM for good. It never crosses into another file system: only
// newRoot is mounted below / at this point, and it is skipped by name and
// by device. Failures only cost memory.
func emptyInitramfs() {
	var root unix.Stat_t
	entries, err := os.ReadDir("/")
	if err != nil || unix.Lstat("/", &root) != nil {
		return
	}
	for _, e := range entries {
		path := filepath.Join("/", e.Name())
		var st unix.Stat_t
		if path == newRoot || strings.HasPrefix(newRoot, path+"/") || unix.Lstat(path, &st) != nil || st.Dev != root.Dev {
			continue
		}
		os.RemoveAll(path) //nolint:errcheck // best effort, see above
	}
}
