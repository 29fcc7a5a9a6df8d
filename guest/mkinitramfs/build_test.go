package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestTreeHoldsInitTwiceAndThePayload(t *testing.T) {
	tmp := t.TempDir()
	init := filepath.Join(tmp, "init")
	if err := os.WriteFile(init, []byte("#!init"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "root")
	if err := build(options{dir: dir, init: init, payloadSize: 100}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sbin/init")); err != nil || string(b) != "#!init" {
		t.Errorf("sbin/init = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "init")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("init: %v, %v; want mode 0755", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v, %v; want 01777", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "payload.bin")); err != nil || !bytes.Equal(b, makePayload(100)) {
		t.Errorf("payload.bin: %v", err)
	}
	if err := build(options{dir: dir, init: init}); err == nil {
		t.Error("building into an existing directory succeeded")
	}
}
