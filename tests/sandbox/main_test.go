package main

import (
	"slices"
	"strings"
	"testing"
)

func TestDiskAndPowerSwitchAreOnlyThereWhenAsked(t *testing.T) {
	plain := strings.Join(qemuArgs(&options{memoryMiB: 1, cpus: 1}, "k", "i", "d"), " ")
	if strings.Contains(plain, "-drive") || strings.Contains(plain, "isa-debug-exit") {
		t.Errorf("a sandbox without -disk and -power-switch got %q", plain)
	}
	if slices.Contains(moduleList(&options{}), "virtio_blk") {
		t.Error("a sandbox without a disk loads virtio_blk")
	}
	o := &options{memoryMiB: 1, cpus: 1, disk: "/tmp/a,b.img", powerSwitch: true}
	args := qemuArgs(o, "k", "i", "d")
	if !slices.Contains(args, "file=/tmp/a,,b.img,if=virtio,format=raw,cache=writeback") {
		t.Errorf("-disk with a comma in its path: %q", args)
	}
	if !slices.Contains(args, "isa-debug-exit,iobase=0xf4,iosize=1") {
		t.Errorf("-power-switch: %q", args)
	}
	mods := moduleList(o)
	if i, j := slices.Index(mods, "virtio_blk"), slices.Index(mods, "ext4"); i < 0 || j < 0 || j > slices.Index(mods, "loop") || slices.Index(mods, "crc32c_generic") > j {
		t.Errorf("a sandbox with a disk loads %v", mods)
	}
}
