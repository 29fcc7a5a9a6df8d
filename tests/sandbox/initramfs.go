package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/govmm/govmm/guest/kmod"
)

// modules are loaded in this order (each after what it depends on).
var modules = []string{
	// virtio-9p, for the host's /
	"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"netfs", "fscache", "9pnet", "9pnet_virtio", "9p",
	// KVM on the emulated AMD CPU
	"irqbypass", "ccp", "kvm", "kvm-amd",
	// taps for network tests
	"tun",
	// container runtimes (runc, crun) run in the sandbox: overlay root
	// file systems, and veth pairs on a bridge for container networks
	"overlay", "veth", "llc", "stp", "bridge",
	// ext4 (which also mounts ext2, and wants crc32c to mount either) on
	// loop devices: the scratch disk govmm compare gives every runtime
	"crc32c_generic", "crc16", "mbcache", "jbd2", "ext4", "loop",
}

// diskModules are loaded too when the sandbox has a disk (-disk): its
// driver (ext4 is loaded always).
var diskModules = []string{"virtio_blk"}

// moduleList is what this sandbox loads, in order.
func moduleList(o *options) []string {
	if o.disk == "" {
		return modules
	}
	return append(append([]string{}, modules...), diskModules...)
}

// applets are the busybox commands the init script uses.
var applets = []string{"sh", "mount", "insmod", "mkdir", "cat", "chroot", "poweroff", "sync", "sed", "setsid", "echo", "test", "[", "chgrp", "chmod"}

// moduleOrder is the init script's list: one module per line, then its
// parameters.
func moduleOrder(o *options) string {
	var b strings.Builder
	for _, m := range moduleList(o) {
		b.WriteString(m)
		if m == "kvm-amd" && o.kvmAMD != "" {
			b.WriteString(" " + o.kvmAMD)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// buildInitramfs returns the path of the sandbox's initramfs, building it
// once per distinct content.
func buildInitramfs(o *options) (string, error) {
	names := moduleList(o)
	files, err := kmod.Find(o.kernelTree, names)
	if err != nil {
		return "", err
	}
	bb, err := os.ReadFile(o.busybox)
	if err != nil {
		return "", fmt.Errorf("read busybox: %w (install it with: apt-get install busybox-static)", err)
	}
	recs := []cpio.Record{
		cpio.Directory("bin", 0o755), cpio.Directory("dev", 0o755), cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755), cpio.Directory("host", 0o755), cpio.Directory("modules", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("bin/busybox", string(bb), 0o755),
		cpio.StaticFile("init", initScript, 0o755),
		cpio.StaticFile("modules/order", moduleOrder(o), 0o644),
	}
	for _, a := range applets {
		recs = append(recs, cpio.Symlink("bin/"+a, "busybox"))
	}
	for i, name := range names {
		b, err := os.ReadFile(files[i])
		if err != nil {
			return "", err
		}
		recs = append(recs, cpio.StaticFile("modules/"+name+".ko", string(b), 0o644))
	}
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	if err := cpio.WriteRecords(w, recs); err != nil {
		return "", err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw.Bytes())
	path := filepath.Join(o.cacheDir, "l1-"+hex.EncodeToString(sum[:8])+".cpio.gz")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, writeGzip(path, raw.Bytes())
}

func writeGzip(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, gz.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
