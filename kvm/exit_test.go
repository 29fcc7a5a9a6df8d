package kvm

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// runPage builds a synthetic kvm_run of a typical mmap size (3 pages).
func runPage(reason ExitReason) []byte {
	run := make([]byte, 3*4096)
	binary.LittleEndian.PutUint32(run[runExitReason:], uint32(reason))
	return run
}

func ioPage(out bool, size uint8, port uint16, count uint32, off uint64) []byte {
	run := runPage(ExitIO)
	u := run[runUnion:]
	if out {
		u[0] = ioOut
	}
	u[1] = size
	binary.LittleEndian.PutUint16(u[2:], port)
	binary.LittleEndian.PutUint32(u[4:], count)
	binary.LittleEndian.PutUint64(u[8:], off)
	return run
}

func TestDecodeIOAliasesRun(t *testing.T) {
	run := ioPage(false, 2, 0x3f8, 3, 4096)
	copy(run[4096:], "abcdef")
	e := decodeExit(run)
	if e.Reason != ExitIO || e.IO.Port != 0x3f8 || e.IO.Out || e.IO.Size != 2 || e.IO.Count != 3 {
		t.Fatalf("decoded %+v", e)
	}
	if string(e.IO.Data) != "abcdef" {
		t.Errorf("data %q, want the 6 bytes at data_offset", e.IO.Data)
	}
	e.IO.Data[0] = 'Z' // an IN handler fills Data; KVM must see it in kvm_run
	if run[4096] != 'Z' {
		t.Error("IO Data does not alias kvm_run: an IN result would be lost")
	}
}

func TestDecodeIOOut(t *testing.T) {
	run := ioPage(true, 1, 0x80, 1, 4096)
	run[4096] = 'A'
	e := decodeExit(run)
	if !e.IO.Out || string(e.IO.Data) != "A" {
		t.Errorf("decoded %+v, want OUT of 'A'", e.IO)
	}
}

func TestDecodeIORejectsNonsense(t *testing.T) {
	for _, c := range []struct {
		name  string
		size  uint8
		count uint32
		off   uint64
	}{
		{"size 3", 3, 1, 4096},
		{"size 0", 0, 1, 4096},
		{"size 8", 8, 1, 4096},
		{"count 0", 1, 0, 4096},
		{"offset past page", 1, 1, 3 * 4096},
		{"offset near 2^64", 4, 1, ^uint64(0) - 1},
		{"data runs past page", 4, 2048, 4096 + 1},
		{"huge count", 4, ^uint32(0), 4096},
	} {
		if e := decodeExit(ioPage(true, c.size, 0x3f8, c.count, c.off)); e.Reason != ExitBadData {
			t.Errorf("%s: decoded as %v (%d data bytes), want ExitBadData", c.name, e.Reason, len(e.IO.Data))
		}
	}
}

func mmioPage(addr uint64, n uint32, write bool, data string) []byte {
	run := runPage(ExitMMIO)
	u := run[runUnion:]
	binary.LittleEndian.PutUint64(u, addr)
	copy(u[8:16], data)
	binary.LittleEndian.PutUint32(u[16:], n)
	if write {
		u[20] = 1
	}
	return run
}

func TestDecodeMMIO(t *testing.T) {
	run := mmioPage(0xd0000004, 4, true, "wxyz")
	e := decodeExit(run)
	if e.Reason != ExitMMIO || e.MMIO.Addr != 0xd0000004 || !e.MMIO.Write || string(e.MMIO.Data) != "wxyz" {
		t.Fatalf("decoded %v %+v", e.Reason, e.MMIO)
	}
	read := decodeExit(mmioPage(0x1000, 8, false, ""))
	if read.MMIO.Write || len(read.MMIO.Data) != 8 {
		t.Fatalf("read decoded %+v", read.MMIO)
	}
	copy(read.MMIO.Data, "12345678")
	if cap(read.MMIO.Data) != 8 {
		t.Errorf("MMIO Data cap %d: appending would overwrite mmio.len", cap(read.MMIO.Data))
	}
	for _, n := range []uint32{0, 9, 1 << 31} {
		if e := decodeExit(mmioPage(0x1000, n, true, "")); e.Reason != ExitBadData {
			t.Errorf("mmio.len %d decoded as %v, want ExitBadData", n, e.Reason)
		}
	}
}

func TestDecodeOtherExits(t *testing.T) {
	ev := runPage(ExitSystemEvent)
	binary.LittleEndian.PutUint32(ev[runUnion:], SystemEventReset)
	fe := runPage(ExitFailEntry)
	binary.LittleEndian.PutUint64(fe[runUnion:], 0x80000021)
	ie := runPage(ExitInternalError)
	binary.LittleEndian.PutUint32(ie[runUnion:], 3)
	if e := decodeExit(ev); e.SystemEventType != SystemEventReset {
		t.Errorf("system event %+v", e)
	}
	if e := decodeExit(fe); e.FailEntryReason != 0x80000021 {
		t.Errorf("fail entry %+v", e)
	}
	if e := decodeExit(ie); e.InternalSuberror != 3 {
		t.Errorf("internal error %+v", e)
	}
	if e := decodeExit(runPage(ExitHLT)); e.Reason != ExitHLT {
		t.Errorf("hlt decoded as %v", e.Reason)
	}
	if e := decodeExit(make([]byte, 100)); e.Reason != ExitBadData {
		t.Errorf("short kvm_run decoded as %v", e.Reason)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{ExitIO.String(), "KVM_EXIT_IO"},
		{ExitSystemEvent.String(), "KVM_EXIT_SYSTEM_EVENT"},
		{ExitReason(99).String(), "KVM exit 99"},
		{CapImmediateExit.String(), "KVM_CAP_IMMEDIATE_EXIT"},
		{CapGetTSCKHz.String(), "KVM_CAP_GET_TSC_KHZ"},
		{Cap(9999).String(), "KVM capability 9999"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	err := (&CapabilityError{Cap: CapPIT2}).Error()
	if !bytes.Contains([]byte(err), []byte("KVM_CAP_PIT2")) {
		t.Errorf("CapabilityError %q does not name the capability", err)
	}
}

// FuzzDecodeExit feeds arbitrary kvm_run contents: decoding must never panic
// and the slices it returns must lie inside the page.
func FuzzDecodeExit(f *testing.F) {
	f.Add(uint32(ExitIO), []byte{1, 1, 0xf8, 3, 1, 0, 0, 0, 0, 0x10})
	f.Add(uint32(ExitMMIO), []byte{0, 0x20, 0, 0, 0, 0, 0, 0, 'a', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, reason uint32, union []byte) {
		run := runPage(ExitReason(reason))
		copy(run[runUnion:runUnion+256], union)
		e := decodeExit(run)
		switch e.Reason {
		case ExitIO:
			if len(e.IO.Data) != e.IO.Size*e.IO.Count || e.IO.Size == 0 {
				t.Fatalf("IO %+v has %d data bytes", e.IO, len(e.IO.Data))
			}
		case ExitMMIO:
			if n := len(e.MMIO.Data); n < 1 || n > 8 {
				t.Fatalf("MMIO with %d data bytes", n)
			}
		}
	})
}

func TestLAPICReg(t *testing.T) {
	var s LAPICState
	s.SetReg(0x350, 0x00000700)
	s.SetReg(0x20, 0x03000000)
	if s.Reg(0x350) != 0x700 || s.Reg(0x20)>>24 != 3 {
		t.Errorf("LINT0 %#x, APIC ID %#x", s.Reg(0x350), s.Reg(0x20))
	}
	if s[0x350+1] != 0x07 || s[0x23] != 0x03 {
		t.Error("registers are not stored little-endian at their offsets")
	}
}

func TestOnlyRunSeesEINTR(t *testing.T) {
	for _, tc := range []struct {
		req   uintptr
		errno unix.Errno
		want  bool
	}{
		{kvmCreateVM, unix.EINTR, true},
		{kvmSetUserMemoryRegion, unix.EINTR, true},
		{kvmRun, unix.EINTR, false},
		{kvmCreateVM, unix.EBADF, false},
		{kvmCreateVM, 0, false},
	} {
		if got := retry(tc.req, tc.errno); got != tc.want {
			t.Errorf("retry(%#x, %v) = %v, want %v", tc.req, tc.errno, got, tc.want)
		}
	}
}

// The system event types are linux/kvm.h's KVM_SYSTEM_EVENT_SHUTDOWN, _RESET
// and _CRASH; package vcpu maps them to poweroff, reboot and crash.
func TestSystemEventNumbers(t *testing.T) {
	if SystemEventShutdown != 1 || SystemEventReset != 2 || SystemEventCrash != 3 {
		t.Errorf("system events shutdown %d reset %d crash %d, want 1, 2, 3", SystemEventShutdown, SystemEventReset, SystemEventCrash)
	}
}
