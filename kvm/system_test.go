package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenMissingDevice(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "kvm"))
	if !errors.Is(err, ErrNoKVM) {
		t.Fatalf("Open of a missing device: %v, want ErrNoKVM", err)
	}
	if !strings.Contains(err.Error(), "make test") || !strings.Contains(err.Error(), "kvm-amd") {
		t.Errorf("%q does not say how to get KVM", err)
	}
}

func TestOpenNotKVM(t *testing.T) {
	_, err := Open("/dev/null")
	if err == nil || errors.Is(err, ErrNoKVM) || !strings.Contains(err.Error(), "KVM_GET_API_VERSION") {
		t.Errorf("Open(/dev/null): %v, want a KVM_GET_API_VERSION failure", err)
	}
}

// TestOpenPermission opens /dev/kvm with the filesystem identity of user
// nobody, on a thread of its own that exits afterwards.
func TestOpenPermission(t *testing.T) {
	fi, err := os.Stat(kvmPath)
	if err != nil || os.Getuid() != 0 || fi.Mode().Perm()&0o007 != 0 {
		t.Skipf("skipping: needs root and a %s closed to other users (stat: %v)", kvmPath, err)
	}
	errc := make(chan error)
	go func() {
		// Never unlocked: Go ends the thread with the goroutine, so the
		// changed fsuid and fsgid die with it.
		runtime.LockOSThread()
		if err := unix.Setfsgid(65534); err != nil {
			errc <- fmt.Errorf("setfsgid: %w", err)
			return
		}
		if err := unix.Setfsuid(65534); err != nil {
			errc <- fmt.Errorf("setfsuid: %w", err)
			return
		}
		// setfsuid(-1) changes nothing and reports the current fsuid.
		if uid, err := unix.SetfsuidRetUid(-1); err != nil || uid != 65534 {
			errc <- fmt.Errorf("setfsuid did not take: fsuid %d (%v)", uid, err)
			return
		}
		_, err := Open(kvmPath)
		errc <- err
	}()
	err = <-errc
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "kvm group") {
		t.Errorf("Open as nobody: %v, want ErrPermission naming the kvm group", err)
	}
}

func TestExtensions(t *testing.T) {
	sys := openKVM(t)
	if err := sys.Require(CapIRQChip, CapUserMemory, CapImmediateExit, CapBinaryStatsFD); err != nil {
		t.Fatal(err)
	}
	var ce *CapabilityError
	if err := sys.Require(CapUserMemory, Cap(1<<20)); !errors.As(err, &ce) || ce.Cap != Cap(1<<20) {
		t.Errorf("Require of an unknown capability: %v, want *CapabilityError for it", err)
	}
	n, err := sys.MaxVCPUs()
	if err != nil || n < 1 {
		t.Errorf("MaxVCPUs = %d, %v", n, err)
	}
	nr, err := sys.CheckExtension(CapNrVCPUs)
	if err != nil || nr < 1 || nr > n {
		t.Errorf("KVM_CAP_NR_VCPUS = %d (%v), want 1..%d (MaxVCPUs)", nr, err, n)
	}
}

func TestSupportedCPUIDHasKVMSignature(t *testing.T) {
	entries, err := openKVM(t).SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Function != 0x40000000 {
			continue
		}
		sig := make([]byte, 12)
		binary.LittleEndian.PutUint32(sig[0:], e.EBX)
		binary.LittleEndian.PutUint32(sig[4:], e.ECX)
		binary.LittleEndian.PutUint32(sig[8:], e.EDX)
		if string(sig) != "KVMKVMKVM\x00\x00\x00" {
			t.Errorf("leaf 0x40000000 signature %q, want KVMKVMKVM", sig)
		}
		return
	}
	t.Errorf("no leaf 0x40000000 among %d supported CPUID entries", len(entries))
}

func TestCPUIDBuffer(t *testing.T) {
	buf := newCPUID2(3)
	v := cpuid2View(buf)
	v[2] = CPUIDEntry{Function: 7, EDX: 0xdead}
	if len(v) != 3 || buf[0] != 3 || buf[cpuid2HeaderWords+2*cpuidEntryWords] != 7 ||
		buf[cpuid2HeaderWords+2*cpuidEntryWords+6] != 0xdead {
		t.Errorf("entry 2 not at its kvm_cpuid2 offset: %v", buf)
	}
	buf[0] = 1000 // a nent larger than the buffer must not read past it
	if n := len(cpuid2View(buf)); n != 3 {
		t.Errorf("view of %d entries from a 3-entry buffer", n)
	}
}

// KVM reports the TSC-deadline timer as a capability, not in its CPUID list;
// SupportedCPUID must carry the bit to the guest when the capability is there.
func TestSupportedCPUIDOffersTSCDeadlineWhenKVMHasIt(t *testing.T) {
	sys := openKVM(t)
	has, err := sys.CheckExtension(CapTSCDeadline)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Function == 1 {
			if got, want := e.ECX&(1<<24) != 0, has > 0; got != want {
				t.Errorf("leaf 1 ECX %#x: TSC-deadline bit %v, KVM_CAP_TSC_DEADLINE_TIMER %d", e.ECX, got, has)
			}
			return
		}
	}
	t.Errorf("no leaf 1 among %d supported CPUID entries", len(entries))
}
