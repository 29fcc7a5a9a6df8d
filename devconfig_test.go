package govmm

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestValidateDisksAndNICs(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	img := filepath.Join(dir, "disk.img")
	roImg := filepath.Join(dir, "ro.img")
	for _, p := range []string{kernel, img, roImg} {
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(roImg, 0o444); err != nil {
		t.Fatal(err)
	}
	mac := net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
		hint  string
	}{
		{"missing image", Config{Disks: []Disk{{Path: filepath.Join(dir, "nope")}}}, "disk[0]", "no such file"},
		{"directory", Config{Disks: []Disk{{Path: dir, ReadOnly: true}}}, "disk[0]", "not a regular file"},
		{"io mode", Config{Disks: []Disk{{Path: img, IO: 9}}}, "disk[0]", "unknown I/O mode"},
		{"long serial", Config{Disks: []Disk{{Path: img, Serial: strings.Repeat("s", 21)}}}, "disk[0]", "at most 20"},
		{"twice", Config{Disks: []Disk{{Path: img}, {Path: img}}}, "disk[1]", "attached twice"},
		{"no tap", Config{NICs: []NIC{{}}}, "net[0]", "tap=tap0"},
		{"long tap", Config{NICs: []NIC{{Tap: "a-very-long-tap-name"}}}, "net[0]", "1 to 15"},
		{"multicast", Config{NICs: []NIC{{Tap: "t0", MAC: net.HardwareAddr{1, 2, 3, 4, 5, 6}}}}, "net[0]", "multicast"},
		{"tap twice", Config{NICs: []NIC{{Tap: "t0"}, {Tap: "t0", MAC: mac}}}, "net[1]", "used twice"},
		{"console", Config{ConsoleDevice: 7}, "console", "unknown console"},
	} {
		tc.cfg.Kernel = kernel
		err := tc.cfg.Validate()
		var fe *FieldError
		if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: Validate = %v; want a %s error mentioning %q", tc.name, err, tc.field, tc.hint)
		}
	}
	ok := Config{Kernel: kernel, Disks: []Disk{{Path: img, Serial: "s1"}, {Path: roImg, ReadOnly: true}}, NICs: []NIC{{Tap: "t0", MAC: mac}, {Tap: "t1"}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid disks and NICs: %v", err)
	}
}

// A disk is a raw image or a block device, as the disk device serves both;
// anything else is refused, naming what it is.
func TestDiskKinds(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o644, true},
		{fs.ModeDevice | 0o660, true}, // a block device, e.g. /dev/loop0
		{fs.ModeDevice | fs.ModeCharDevice | 0o666, false},
		{fs.ModeNamedPipe | 0o644, false},
		{fs.ModeDir | 0o755, false},
		{fs.ModeSocket | 0o755, false},
		{fs.ModeSymlink | 0o777, false}, // Stat follows links: a dangling one
	} {
		err := diskKind(tc.mode)
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "not a regular file or a block device") {
			t.Errorf("mode %v: %v, want accepted %v", tc.mode, err, tc.ok)
		}
	}
	// And through Validate, with the files themselves.
	dir := t.TempDir()
	kernel := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(kernel, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// (Read-write: a FIFO opened read-only waits for a writer; a directory
	// opened read-write fails before it can be looked at.)
	for _, d := range []Disk{{Path: fifo}, {Path: dir, ReadOnly: true}, {Path: "/dev/null"}} {
		path := d.Path
		err := Config{Kernel: kernel, Disks: []Disk{d}}.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "disk[0]" || !strings.Contains(err.Error(), path+" is not a regular file or a block device") {
			t.Errorf("disk %s: %v, want it refused as neither an image nor a block device", path, err)
		}
	}
}

// TestPortsReachTheMachineInOrder: the guest finds each port by its place
// (hvc0, hvc1, ...), so Config.Ports must keep its order, and a nil Out
// must not reach a device that writes to it.
func TestPortsReachTheMachineInOrder(t *testing.T) {
	var a, b strings.Builder
	in := strings.NewReader("x")
	mc := Config{Ports: []Port{{In: in, Out: &a}, {Out: &b}, {}}}.machine()
	if len(mc.Ports) != 3 {
		t.Fatalf("%d ports reached the machine, want 3", len(mc.Ports))
	}
	if mc.Ports[0].In != in || mc.Ports[0].Out != &a || mc.Ports[1].Out != &b || mc.Ports[1].In != nil {
		t.Errorf("ports out of order: %+v", mc.Ports)
	}
	if mc.Ports[2].Out != io.Discard {
		t.Errorf("a port without Out writes to %v, want io.Discard", mc.Ports[2].Out)
	}
}
