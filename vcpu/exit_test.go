package vcpu

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/kvm"
)

// recorder is a device that logs accesses and answers reads with a pattern.
type recorder struct{ log []string }

func (r *recorder) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = byte(0xa0 + off + uint64(i))
	}
	r.log = append(r.log, "r"+string(rune('0'+off))+string(rune('0'+len(data))))
}

func (r *recorder) Write(off uint64, data []byte) {
	r.log = append(r.log, "w"+string(rune('0'+off))+string(data))
}

func testBuses(t *testing.T) (Buses, *recorder, *recorder) {
	t.Helper()
	pio, mmio := &recorder{}, &recorder{}
	b := Buses{PIO: devices.NewBus("pio"), MMIO: devices.NewBus("mmio")}
	if err := b.PIO.Register(0x3f8, 8, "uart", pio); err != nil {
		t.Fatal(err)
	}
	if err := b.MMIO.Register(0xd0000000, 0x1000, "mmio", mmio); err != nil {
		t.Fatal(err)
	}
	return b, pio, mmio
}

func TestHandleExitDispatchesIO(t *testing.T) {
	b, pio, _ := testBuses(t)
	var c Counters
	// REP OUTSB of three bytes to port 0x3f8.
	stop, err := handleExit(kvm.Exit{Reason: kvm.ExitIO, IO: kvm.IOExit{Port: 0x3f8, Out: true, Size: 1, Count: 3, Data: []byte("abc")}}, b, &c)
	if stop != nil || err != nil {
		t.Fatalf("stop %v err %v", stop, err)
	}
	if strings.Join(pio.log, ",") != "w0a,w0b,w0c" {
		t.Errorf("device saw %v", pio.log)
	}
	in := make([]byte, 2)
	if _, err := handleExit(kvm.Exit{Reason: kvm.ExitIO, IO: kvm.IOExit{Port: 0x3fd, Size: 2, Count: 1, Data: in}}, b, &c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in, []byte{0xa5, 0xa6}) {
		t.Errorf("IN from offset 5 returned %x", in)
	}
	if c.PIO.Load() != 2 {
		t.Errorf("PIO exits counted %d, want 2", c.PIO.Load())
	}
}

func TestHandleExitUnknownPortIsNotFatal(t *testing.T) {
	b, _, _ := testBuses(t)
	data := []byte{0}
	stop, err := handleExit(kvm.Exit{Reason: kvm.ExitIO, IO: kvm.IOExit{Port: 0x80, Size: 1, Count: 1, Data: data}}, b, &Counters{})
	if stop != nil || err != nil || data[0] != 0xff {
		t.Errorf("unknown port: stop %v err %v data %#x; want ignored, reads 0xff", stop, err, data[0])
	}
	if u := b.PIO.Unhandled(); len(u) != 1 || u[0].Addr != 0x80 {
		t.Errorf("unhandled accesses %+v, want port 0x80 counted", u)
	}
}

func TestHandleExitMMIO(t *testing.T) {
	b, _, mmio := testBuses(t)
	var c Counters
	if _, err := handleExit(kvm.Exit{Reason: kvm.ExitMMIO, MMIO: kvm.MMIOExit{Addr: 0xd0000004, Write: true, Data: []byte("z")}}, b, &c); err != nil {
		t.Fatal(err)
	}
	if strings.Join(mmio.log, ",") != "w4z" || c.MMIO.Load() != 1 {
		t.Errorf("mmio log %v, count %d", mmio.log, c.MMIO.Load())
	}
}

func TestHandleExitEndings(t *testing.T) {
	b, _, _ := testBuses(t)
	for _, tc := range []struct {
		exit   kvm.Exit
		event  devices.Event
		detail string // what the detail, or the error, says
		err    bool
	}{
		{kvm.Exit{Reason: kvm.ExitShutdown}, devices.Crash, "triple fault", false},
		{kvm.Exit{Reason: kvm.ExitSystemEvent, SystemEventType: kvm.SystemEventShutdown}, devices.PowerOff, "shutdown", false},
		{kvm.Exit{Reason: kvm.ExitSystemEvent, SystemEventType: kvm.SystemEventReset}, devices.Reset, "reset", false},
		{kvm.Exit{Reason: kvm.ExitSystemEvent, SystemEventType: kvm.SystemEventCrash}, devices.Crash, "crash", false},
		{kvm.Exit{Reason: kvm.ExitSystemEvent, SystemEventType: 99}, devices.Crash, "unknown system event 99", false},
		// KVM_INTERNAL_ERROR_EMULATION is suberror 1.
		{kvm.Exit{Reason: kvm.ExitInternalError, InternalSuberror: 1}, devices.Crash, "cannot emulate", false},
		{kvm.Exit{Reason: kvm.ExitFailEntry, FailEntryReason: 0x21}, 0, "0x21", true},
		{kvm.Exit{Reason: kvm.ExitReason(9999)}, 0, "unexpected exit", true},
	} {
		stop, err := handleExit(tc.exit, b, &Counters{})
		if tc.err {
			if err == nil || stop != nil || !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("%v: stop %v err %v; want an error mentioning %q", tc.exit.Reason, stop, err, tc.detail)
			}
			continue
		}
		if err != nil || stop == nil || stop.Event != tc.event || !strings.Contains(stop.Detail, tc.detail) {
			t.Errorf("%v: stop %+v err %v; want %v with a detail mentioning %q", tc.exit.Reason, stop, err, tc.event, tc.detail)
		}
	}
	if stop, err := handleExit(kvm.Exit{Reason: kvm.ExitIntr}, b, &Counters{}); stop != nil || err != nil {
		t.Errorf("EINTR-style exit: stop %v err %v, want to carry on", stop, err)
	}
}

func TestSnapshotListsAPICVectors(t *testing.T) {
	var l kvm.LAPICState
	l.SetReg(lapicIRR+1*lapicBitmapGap, 1<<6|1<<7) // vectors 0x26, 0x27
	l.SetReg(lapicIRR+7*lapicBitmapGap, 1<<31)     // vector 0xff
	l.SetReg(lapicISR, 1<<2)
	if got, want := fmt.Sprint(bitmapVectors(&l, lapicIRR)), fmt.Sprint([]int{0x26, 0x27, 0xff}); got != want {
		t.Errorf("IRR vectors %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(bitmapVectors(&l, lapicISR)), fmt.Sprint([]int{2}); got != want {
		t.Errorf("ISR vectors %s, want %s", got, want)
	}
}
