package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/govmm/govmm/guest/kmod"
)

type options struct {
	out, dir, init, modules, busybox string
	payloadSize                      int
}

// virtioModules are loaded by the guest in this order (each module after
// those named in its depends=).
var virtioModules = []string{
	"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
	"virtio_blk", "failover", "net_failover", "virtio_net", "virtio_console", "virtio-rng",
	"vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
	// a container's writable root (govmm run --bundle)
	"overlay",
}

// build writes the image as a gzipped cpio archive (o.out) or as a
// directory tree for mke2fs -d (o.dir).
func build(o options) error {
	payload := makePayload(o.payloadSize)
	recs, err := records(o, payload)
	if err != nil {
		return err
	}
	if o.dir != "" {
		return writeTree(o.dir, recs)
	}
	if err := writeArchive(o.out, recs); err != nil {
		return err
	}
	sum := sha256.Sum256(payload)
	return os.WriteFile(o.out+".payload.sha256", []byte(hex.EncodeToString(sum[:])+"  payload.bin\n"), 0o644)
}

// records is the image: /init (also /sbin/init, where a kernel or a
// switch_root looks on a disk), the payload, the modules and busybox.
func records(o options, payload []byte) ([]cpio.Record, error) {
	initBin, err := os.ReadFile(o.init)
	if err != nil {
		return nil, fmt.Errorf("read init: %w", err)
	}
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755), cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("proc", 0o755), cpio.Directory("sys", 0o755), cpio.Directory("tmp", 0o1777),
		cpio.Directory("etc", 0o755), cpio.Directory("etc/govmm", 0o755),
		cpio.Directory("lib", 0o755), cpio.Directory("lib/modules", 0o755),
		cpio.StaticFile("init", string(initBin), 0o755),
		cpio.Directory("sbin", 0o755), cpio.Symlink("sbin/init", "../init"),
		cpio.StaticFile("payload.bin", string(payload), 0o644),
	}
	if o.modules != "" {
		mods, err := moduleRecords(o.modules)
		if err != nil {
			return nil, err
		}
		recs = append(recs, mods...)
	}
	if o.busybox != "" {
		bb, err := busyboxRecords(o.busybox)
		if err != nil {
			return nil, err
		}
		recs = append(recs, bb...)
	}
	return recs, nil
}

// makePayload is a reproducible stream: SHA-256 in counter mode.
func makePayload(n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var ctr [8]byte
	for i := uint64(0); len(out) < n; i++ {
		binary.LittleEndian.PutUint64(ctr[:], i)
		h := sha256.Sum256(append([]byte("govmm payload "), ctr[:]...))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func moduleRecords(tree string) ([]cpio.Record, error) {
	paths, err := kmod.Find(tree, virtioModules)
	if err != nil {
		return nil, err
	}
	var recs []cpio.Record
	for i, m := range virtioModules {
		path := paths[i]
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		recs = append(recs, cpio.StaticFile("lib/modules/"+m+".ko", string(b), 0o644))
	}
	recs = append(recs, cpio.StaticFile("etc/govmm/modules", strings.Join(virtioModules, "\n")+"\n", 0o644))
	return recs, nil
}

// busyboxRecords installs busybox with a link for each applet it lists.
func busyboxRecords(path string) ([]cpio.Record, error) {
	bb, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	list, err := exec.Command(path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", path, err)
	}
	recs := []cpio.Record{cpio.Directory("bin", 0o755), cpio.StaticFile("bin/busybox", string(bb), 0o755)}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" && a != "init" {
			recs = append(recs, cpio.Symlink("bin/"+a, "busybox"))
		}
	}
	return recs, nil
}

// writeArchive writes a reproducible, gzipped newc archive.
func writeArchive(path string, recs []cpio.Record) error {
	cpio.MakeAllReproducible(recs)
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	if err := cpio.WriteRecords(w, recs); err != nil {
		return err
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, gz.Bytes(), 0o644)
}
