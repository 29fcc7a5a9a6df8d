// Package kvm owns every ioctl on /dev/kvm, on VM fds and on vCPU fds
// (Documentation/virt/kvm/api.rst). It mirrors the C structs of linux/kvm.h
// and decodes the shared kvm_run page into Go exit values. No other package
// talks to KVM.
package kvm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// apiVersion is the only KVM API version there has ever been (KVM_API_VERSION).
const apiVersion = 12

var (
	// ErrNoKVM means there is no KVM device to open.
	ErrNoKVM = errors.New("KVM is not available: load the kvm-intel or kvm-amd module on a host with " +
		"virtualization enabled (and nested virtualization, inside a VM), or run the tests through " +
		"the project's nested-KVM sandbox with `make test` (go run ./tests/sandbox)")
	// ErrPermission means the KVM device exists but this user may not open it.
	ErrPermission = errors.New("no permission to open the KVM device: add your user to the kvm group " +
		"(usermod -aG kvm $USER, then log in again) or run as root")
	// ErrAPIVersion means the device speaks another KVM API than version 12.
	ErrAPIVersion = errors.New("unsupported KVM API version")
	// ErrInterrupted means KVM_RUN returned EINTR (a signal or immediate_exit);
	// the caller re-checks whether to stop and runs again.
	ErrInterrupted = errors.New("KVM_RUN interrupted")
	// ErrNoStats means this host's KVM has no binary statistics
	// (KVM_GET_STATS_FD, Linux 5.14+): a VM runs the same without them.
	ErrNoStats = errors.New("KVM has no binary statistics (KVM_GET_STATS_FD needs Linux 5.14+)")
)

// CapabilityError says which required capability this host's KVM lacks.
type CapabilityError struct{ Cap Cap }

// Error names the missing capability.
func (e *CapabilityError) Error() string {
	return fmt.Sprintf("this host's KVM lacks %v, which govmm needs: use a newer host kernel", e.Cap)
}

// System is an open KVM device (/dev/kvm).
type System struct {
	f        *os.File
	mmapSize int
}

// Open opens the KVM device at path and checks its API version.
func Open(path string) (*System, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		// ENXIO/ENODEV: the node exists but no kvm module backs it.
		return nil, fmt.Errorf("open %s: %w", path, ErrNoKVM)
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("open %s: %w", path, ErrPermission)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &System{f: f}
	if err := s.handshake(); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", path, err), f.Close())
	}
	return s, nil
}

// handshake checks the API version and learns the size of kvm_run.
func (s *System) handshake() error {
	v, err := ioctl(s.fd(), kvmGetAPIVersion, 0)
	if err != nil {
		return fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != apiVersion {
		return fmt.Errorf("%w %d (want %d): this is not a Linux KVM device", ErrAPIVersion, v, apiVersion)
	}
	size, err := ioctl(s.fd(), kvmGetVCPUMmapSize, 0)
	if err != nil {
		return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	if size < minRunSize {
		return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %d bytes, smaller than struct kvm_run (%d)", size, minRunSize)
	}
	s.mmapSize = int(size)
	return nil
}

func (s *System) fd() uintptr { return s.f.Fd() }

// Close closes the device. VMs created from it stay valid.
func (s *System) Close() error { return s.f.Close() }

// CheckExtension returns KVM_CHECK_EXTENSION for c: 0 when absent.
func (s *System) CheckExtension(c Cap) (int, error) {
	v, err := ioctl(s.fd(), kvmCheckExtension, uintptr(c))
	if err != nil {
		return 0, fmt.Errorf("KVM_CHECK_EXTENSION %v: %w", c, err)
	}
	return int(v), nil
}

// Require returns a *CapabilityError for the first of caps KVM lacks.
func (s *System) Require(caps ...Cap) error {
	for _, c := range caps {
		v, err := s.CheckExtension(c)
		if err != nil {
			return err
		}
		if v == 0 {
			return &CapabilityError{Cap: c}
		}
	}
	return nil
}

// MaxVCPUs is how many vCPUs one VM may have (KVM_CAP_MAX_VCPUS, else
// KVM_CAP_NR_VCPUS, else 4 as api.rst says).
func (s *System) MaxVCPUs() (int, error) {
	for _, c := range []Cap{CapMaxVCPUs, CapNrVCPUs} {
		v, err := s.CheckExtension(c)
		if err != nil {
			return 0, err
		}
		if v > 0 {
			return v, nil
		}
	}
	return 4, nil
}

// CreateVM creates a VM with the default machine type.
func (s *System) CreateVM() (*VM, error) {
	fd, err := ioctl(s.fd(), kvmCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	return &VM{f: os.NewFile(fd, "kvm-vm"), mmapSize: s.mmapSize, ring: &coalescedRing{}}, nil
}
