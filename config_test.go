package govmm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateNamesTheFieldAndTheFix(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
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
