package govmm

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestValidateNamesTheFieldAndTheFix(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo") // opened the usual way, it would block for ever
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o644); err != nil || os.Truncate(big, 64<<20) != nil {
		t.Fatal("sparse 64 MiB file:", err)
	}
	for _, tc := range []struct {
		cfg   Config
		field string
		hint  string
	}{
		{Config{}, "kernel", "pass the path of a bzImage"},
		{Config{Kernel: filepath.Join(dir, "nope")}, "kernel", "no such file"},
		{Config{Kernel: dir}, "kernel", "not a regular file"},
		{Config{Kernel: file, Initrd: filepath.Join(dir, "nope")}, "initrd", "no such file"},
		{Config{Kernel: file, Memory: 1 << 20}, "memory", "at least 16 MiB"},
		{Config{Kernel: file, Memory: 64<<20 + 1}, "memory", "multiple of 4 KiB"},
		{Config{Kernel: file, Memory: 1 << 50}, "memory", "the host has"},
		{Config{Kernel: file, CPUs: -1}, "cpus", "between 1 and 255"},
		{Config{Kernel: file, CPUs: 256}, "cpus", "between 1 and 255"},
		{Config{Kernel: fifo}, "kernel", "(a FIFO)"},
		{Config{Kernel: file, Initrd: fifo}, "initrd", "(a FIFO)"},
		{Config{Kernel: big, Memory: 64 << 20}, "memory", "the kernel and initrd take 64 MiB, more than the guest's 64 MiB"},
		{Config{Kernel: file, Initrd: big, Memory: 32 << 20}, "memory", "more than the guest's 32 MiB"},
		{Config{Kernel: file, Cmdline: strings.Repeat("a", 2048)}, "cmdline", "at most 2047"},
		{Config{Kernel: file, NICs: []NIC{{Tap: "t0", MAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}}}}, "net[0]", "is no address"},
	} {
		err := tc.cfg.Validate()
		var fe *FieldError
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("Validate(%+v) = %v; want a %s error mentioning %q", tc.cfg, err, tc.field, tc.hint)
		}
	}
	if err := (Config{Kernel: file}).Validate(); err != nil {
		t.Errorf("defaults with a kernel: %v", err)
	}
}
