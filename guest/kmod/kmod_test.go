package kmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindKeepsOrderAndNamesTheMissing(t *testing.T) {
	tree := t.TempDir()
	dir := filepath.Join(tree, "lib", "modules", "6.1.0", "kernel", "drivers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"virtio.ko", "virtio_ring.ko", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, m), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Find(tree, []string{"virtio_ring", "virtio"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(got[0]) != "virtio_ring.ko" || filepath.Base(got[1]) != "virtio.ko" {
		t.Errorf("Find = %v, want virtio_ring.ko then virtio.ko", got)
	}
	if _, err := Find(tree, []string{"virtio", "9p"}); err == nil || !strings.Contains(err.Error(), "9p.ko") {
		t.Errorf("Find with a missing module: err %v, want one naming 9p.ko", err)
	}
	if _, err := Find(filepath.Join(tree, "nothing"), []string{"virtio"}); err == nil {
		t.Error("Find in a missing tree succeeded")
	}
}
