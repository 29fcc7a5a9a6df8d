package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRawPositionalWritesAndReadsAtTheOffset(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "disk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	want := []byte("written at 4096")
	if n, err := rawPositional(fd, want, 4096, true); err != nil || n != len(want) {
		t.Fatalf("write: %d, %v; want %d bytes", n, err, len(want))
	}
	got := make([]byte, len(want))
	if n, err := rawPositional(fd, got, 4096, false); err != nil || n != len(want) || !bytes.Equal(got, want) {
		t.Fatalf("read back: %d, %v, %q; want %q", n, err, got[:max(n, 0)], want)
	}
	if n, err := rawPositional(fd, got, 4096+5, false); err != nil || n != len(want)-5 {
		t.Errorf("read across the end: %d bytes, %v; want the %d left", n, err, len(want)-5)
	}
	if on, _ := os.ReadFile(f.Name()); len(on) != 4096+len(want) || !bytes.Equal(on[4096:], want) {
		t.Errorf("file holds %d bytes, ending %q; want the data at offset 4096", len(on), on[min(len(on), 4096):])
	}
}

func TestRawPositionalReturnsTheErrno(t *testing.T) {
	if _, err := rawPositional(-1, make([]byte, 1), 0, false); !errors.Is(err, unix.EBADF) {
		t.Errorf("read from fd -1: %v, want EBADF", err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := rawPositional(int(f.Fd()), make([]byte, 1), 0, true); !errors.Is(err, unix.EBADF) {
		t.Errorf("write to a read-only fd: %v, want EBADF", err)
	}
}
