package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRemoveOnDeviceEmptiesATreeOnItsDeviceOnly(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"init", "lib/modules/virtio_blk.ko", "lib/modules/kernel/fs/ext4.ko", "bin/busybox"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/bin/busybox", filepath.Join(dir, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		t.Fatal(err)
	}
	// Another device's entries stay: with a device no entry is on,
	// nothing goes.
	removeOnDevice(dir, st.Dev+1)
	if left, _ := os.ReadDir(dir); len(left) != 3 {
		t.Fatalf("%d entries left after removing another device's, want all 3", len(left))
	}
	removeOnDevice(dir, st.Dev)
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the top directory went too: %v", err)
	}
	if len(left) != 0 {
		t.Fatalf("%d entries left, want none", len(left))
	}
}
