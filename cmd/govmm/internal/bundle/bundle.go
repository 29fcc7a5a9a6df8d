// Package bundle reads and checks an OCI runtime bundle (a directory with
// config.json and a root file system, as runc takes it) on the host, before
// govmm boots a VM for it: a mistake found here costs no boot, and its
// error names the field and the fix. It maps the spec to the guest agent's
// Process, lists what a microVM cannot honour, and builds the root file
// system's ext4 image. It knows nothing of VMs.
package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/govmm/govmm/guest/agent"
)

// ErrBadBundle is wrapped by every error of Load about the bundle itself.
var ErrBadBundle = errors.New("bad OCI bundle")

// RootDevice is the guest's name of the root image: the VM's first disk.
const RootDevice = "/dev/vda"

// Bundle is a checked OCI bundle, ready to run in a microVM.
type Bundle struct {
	Dir     string // absolute
	Spec    *specs.Spec
	Process agent.Process // what the guest runs; RootDevice "/dev/vda"
	Memory  uint64        // guest RAM from linux.resources.memory.limit (bytes), 0 if unset
	CPUs    int           // vCPUs from linux.resources.cpu: ceil(quota/period), else the cpuset's CPU count, 0 if unset
	// Unsupported lists what the spec asks that a microVM cannot honour,
	// one line each (the caller prints each as "govmm: bundle: LINE").
	Unsupported []string
	// Root is the root file system's directory (root.path), absolute,
	// with links resolved.
	Root string
	// Disks are the VM's disks after the root image, in the order the
	// guest names them (/dev/vdb, ...): one per mount of a block device.
	Disks []Disk
}

// Load reads DIR/config.json and checks it against the root file system.
func Load(dir string) (*Bundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadBundle, dir, err)
	}
	if err := checkDir(abs); err != nil {
		return nil, err
	}
	spec, err := readSpec(abs)
	if err != nil {
		return nil, bad(abs, err)
	}
	b, err := check(abs, spec)
	if err != nil {
		return nil, bad(abs, err)
	}
	return b, nil
}

// check checks a parsed spec and maps it; its errors are Load's without
// the bundle's name.
func check(dir string, spec *specs.Spec) (*Bundle, error) {
	if err := checkVersion(spec.Version); err != nil {
		return nil, err
	}
	root, err := rootDir(dir, spec.Root)
	if err != nil {
		return nil, err
	}
	if err := checkProcess(root, spec.Process); err != nil {
		return nil, err
	}
	b := &Bundle{Dir: dir, Spec: spec, Root: root, Process: process(spec)}
	if b.Process.Mounts, b.Disks, err = guestMounts(spec.Mounts); err != nil {
		return nil, err
	}
	var lines []string
	if b.Memory, b.CPUs, lines, err = resources(spec.Linux); err != nil {
		return nil, err
	}
	b.Unsupported = append(unsupported(spec), lines...)
	return b, nil
}

// bad names the bundle in err and makes it an ErrBadBundle.
func bad(dir string, err error) error {
	return fmt.Errorf("%w %s: %w", ErrBadBundle, dir, err)
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return bad(dir, errors.New("no such directory: --bundle takes the directory that holds config.json and the root file system"))
	case err != nil:
		return bad(dir, err)
	case !fi.IsDir():
		return bad(dir, errors.New("not a directory: --bundle takes the directory that holds config.json and the root file system, not a file"))
	}
	return nil
}
