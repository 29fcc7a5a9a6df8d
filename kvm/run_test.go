package kvm

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// program is 16-bit real-mode code; the comment after each instruction says
// which exit it causes.
var program = []byte{
	0xba, 0xf8, 0x03, // mov dx, 0x3f8
	0xb0, 'A', // mov al, 'A'
	0xee,             // out dx, al        -> IO out 'A'
	0xa2, 0x00, 0x20, // mov [0x2000], al  -> MMIO write 'A'
	0xa0, 0x04, 0x20, // mov al, [0x2004]  -> MMIO read, we answer 'Z'
	0xee,             // out dx, al        -> IO out 'Z'
	0xec,             // in al, dx         -> IO in, we answer 'q'
	0xa2, 0x08, 0x20, // mov [0x2008], al  -> MMIO write 'q'
	0xb8, 0x34, 0x12, // mov ax, 0x1234
	0xef, // out dx, ax        -> IO out of 2 bytes
	0xf4, // hlt               -> HLT
}

type wantExit struct {
	reason ExitReason
	addr   uint64 // port or guest-physical address
	write  bool
	data   string // what the guest wrote
	answer string // what we hand back for a read
}

func TestRunRealModeProgram(t *testing.T) {
	_, cpu := realModeGuest(t, program)
	for i, w := range []wantExit{
		{reason: ExitIO, addr: 0x3f8, write: true, data: "A"},
		{reason: ExitMMIO, addr: dsBase + 0x2000, write: true, data: "A"},
		{reason: ExitMMIO, addr: dsBase + 0x2004, answer: "Z"},
		{reason: ExitIO, addr: 0x3f8, write: true, data: "Z"},
		{reason: ExitIO, addr: 0x3f8, answer: "q"},
		{reason: ExitMMIO, addr: dsBase + 0x2008, write: true, data: "q"},
		{reason: ExitIO, addr: 0x3f8, write: true, data: "\x34\x12"},
		{reason: ExitHLT},
	} {
		e := runToExit(t, cpu)
		if e.Reason != w.reason {
			t.Fatalf("exit %d: %v, want %v", i, e.Reason, w.reason)
		}
		checkExit(t, i, e, w)
	}
	regs, err := cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if regs.RIP != codeAddr+uint64(len(program)) || regs.RAX&0xffff != 0x1234 {
		t.Errorf("after HLT: RIP %#x RAX %#x, want RIP %#x AX 0x1234", regs.RIP, regs.RAX, codeAddr+len(program))
	}
}

// checkExit compares one exit with what the program does, and answers reads.
func checkExit(t *testing.T, i int, e Exit, w wantExit) {
	t.Helper()
	var addr uint64
	var write bool
	var data []byte
	switch e.Reason {
	case ExitIO:
		addr, write, data = uint64(e.IO.Port), e.IO.Out, e.IO.Data
		if e.IO.Count != 1 || e.IO.Size != len(data) {
			t.Errorf("exit %d: IO size %d count %d for %d bytes", i, e.IO.Size, e.IO.Count, len(data))
		}
	case ExitMMIO:
		addr, write, data = e.MMIO.Addr, e.MMIO.Write, e.MMIO.Data
	default:
		return
	}
	if addr != w.addr || write != w.write {
		t.Errorf("exit %d: %v at %#x write=%v, want %#x write=%v", i, e.Reason, addr, write, w.addr, w.write)
	}
	if write && string(data) != w.data {
		t.Errorf("exit %d: guest wrote %q, want %q", i, data, w.data)
	}
	if !write {
		if len(data) != len(w.answer) {
			t.Fatalf("exit %d: read of %d bytes, want %d", i, len(data), len(w.answer))
		}
		copy(data, w.answer)
	}
}

func TestImmediateExit(t *testing.T) {
	_, cpu := realModeGuest(t, program)
	cpu.SetImmediateExit(true)
	if err := cpu.Run(); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run with immediate_exit set: %v, want ErrInterrupted", err)
	}
	regs, err := cpu.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if regs.RIP != codeAddr {
		t.Errorf("the guest ran to RIP %#x despite immediate_exit", regs.RIP)
	}
	// Run cleared immediate_exit, so the guest now reaches its first OUT.
	if e := runToExit(t, cpu); e.Reason != ExitIO || string(e.IO.Data) != "A" {
		t.Errorf("after ErrInterrupted: %v %+v, want the first OUT", e.Reason, e.IO)
	}
}

// TestKickSpinningGuest stops a vCPU stuck in `jmp $` the way the vCPU loop
// does: immediate_exit plus a signal to its thread.
func TestKickSpinningGuest(t *testing.T) {
	_, cpu := realModeGuest(t, []byte{0xeb, 0xfe}) // jmp $
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()
	done, kicker := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-kicker }() // the vCPU is closed after this
	go func() {
		defer close(kicker)
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
				cpu.SetImmediateExit(true)
				if err := unix.Tgkill(unix.Getpid(), tid, unix.SIGURG); err != nil {
					t.Errorf("tgkill: %v", err)
					return
				}
			}
		}
	}()
	start := time.Now()
	if err := cpu.Run(); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run of a spinning guest: %v, want ErrInterrupted", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("Run returned after %v, before the first kick", d)
	}
}

func TestVCPUStatsCountExits(t *testing.T) {
	_, cpu := realModeGuest(t, program)
	st, err := cpu.Stats()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { check(t, "close stats", st.Close()) }()
	before, err := st.Read()
	if err != nil {
		t.Fatal(err)
	}
	var io, mmio uint64
	for e := runToExit(t, cpu); e.Reason != ExitHLT; e = runToExit(t, cpu) {
		switch e.Reason {
		case ExitIO:
			io++
		case ExitMMIO:
			mmio++
		}
	}
	after, err := st.Read()
	if err != nil {
		t.Fatal(err)
	}
	// io_exits and mmio_exits count hardware intercepts only: a port access
	// that KVM's instruction emulator performs (as it does for real mode on
	// some hosts) reaches user space without adding to io_exits. "exits"
	// counts every exit from the guest, so it must cover all of them.
	for _, name := range []string{"io_exits", "mmio_exits", "halt_exits"} {
		if _, ok := after[name]; !ok {
			t.Errorf("vCPU statistics lack %s: %v", name, after)
		}
	}
	if got, want := after["exits"]-before["exits"], io+mmio+1; got < want {
		t.Errorf("exits went up by %d, want at least %d (stats: %v)", got, want, after)
	}
	if got := after["halt_exits"] - before["halt_exits"]; got < 1 {
		t.Errorf("halt_exits went up by %d after a HLT exit", got)
	}
}

func TestVMStats(t *testing.T) {
	vm := newVM(t, openKVM(t))
	st, err := vm.Stats()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { check(t, "close stats", st.Close()) }()
	vals, err := st.Read()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vals["remote_tlb_flush"]; !ok {
		t.Errorf("VM statistics lack remote_tlb_flush: %v", vals)
	}
}
