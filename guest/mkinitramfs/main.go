// Command mkinitramfs builds govmm's guest initramfs with u-root's cpio
// package: our init as /init, the kernel's virtio modules, a payload file
// whose digest the host keeps for the boot tests and, for the demo, busybox.
// With -dir it writes the same tree to a directory instead, from which the
// Makefile builds the ext4 root file system image with mke2fs -d.
//
//	mkinitramfs -init bin/guest-init -modules ~/.cache/govmm/kernel -o initramfs.cpio.gz
//	mkinitramfs -init bin/guest-init -modules ~/.cache/govmm/kernel -dir rootfs.d
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var o options
	flag.StringVar(&o.out, "o", "", "output `FILE` (.cpio.gz); FILE.payload.sha256 is written beside it")
	flag.StringVar(&o.dir, "dir", "", "write the tree into `DIR` (which must not exist) instead of an archive")
	flag.StringVar(&o.init, "init", "", "the guest init binary (static), installed as /init")
	flag.StringVar(&o.modules, "modules", "", "unpacked Debian linux-image package whose virtio modules to include")
	flag.StringVar(&o.busybox, "busybox", "", "static busybox to include with its applets (for an interactive shell)")
	flag.IntVar(&o.payloadSize, "payload-size", 1<<20, "bytes of deterministic pseudo-random /payload.bin")
	flag.Parse()
	if (o.out == "") == (o.dir == "") || o.init == "" {
		fmt.Fprintln(os.Stderr, "mkinitramfs: -init and one of -o and -dir are required")
		flag.Usage()
		os.Exit(2)
	}
	if err := build(o); err != nil {
		fmt.Fprintf(os.Stderr, "mkinitramfs: %v\n", err)
		os.Exit(1)
	}
}
