package vcpu

import (
	"bytes"
	"testing"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/acpipm"
	"github.com/govmm/govmm/devices/i8042"
	"github.com/govmm/govmm/kvm"
)

// access is one access a device saw.
type access struct {
	write bool
	off   uint64
	data  []byte
}

// tape is a device that logs every access and answers the nth read with
// bytes n, n+1, ...
type tape struct{ log []access }

func (d *tape) Read(off uint64, data []byte) {
	for i := range data {
		data[i] = byte(len(d.log) + i)
	}
	d.log = append(d.log, access{off: off, data: bytes.Clone(data)})
}

func (d *tape) Write(off uint64, data []byte) {
	d.log = append(d.log, access{write: true, off: off, data: bytes.Clone(data)})
}

// Where the fuzz target's devices sit.
const (
	tapePort = 0x3f8
	tapeLen  = 8
	tapeMMIO = 0xd0000000
	pmPort   = 0x600
	// maxIOData is the most a port exit carries: the data lies in the
	// kvm_run page after its header, which kvm's decoder checks.
	maxIOData = 4096
)

// FuzzHandleExit dispatches synthetic exits, port I/O with REP counts up to
// a page of data among them, to a bus with a logging device, the i8042 and
// the ACPI PM registers. A port exit becomes exactly Count accesses of Size
// bytes, in order, to the device owning the port (0xff for a port nobody
// owns); an exit is counted once whatever its count; only the exits that
// end the VM return a Stop, and only those that leave the vCPU unable to go
// on return an error.
func FuzzHandleExit(f *testing.F) {
	f.Add(uint32(kvm.ExitIO), uint16(tapePort), true, byte(0), uint16(3), []byte("abc"), uint64(0))
	f.Add(uint32(kvm.ExitIO), uint16(tapePort+5), false, byte(0), uint16(maxIOData), []byte(nil), uint64(0))
	f.Add(uint32(kvm.ExitIO), uint16(tapePort+6), true, byte(2), uint16(1000), bytes.Repeat([]byte("abcd"), 1000), uint64(0))
	f.Add(uint32(kvm.ExitIO), uint16(0x64), true, byte(0), uint16(2), []byte{0xd1, 0xfe}, uint64(0))
	f.Add(uint32(kvm.ExitIO), uint16(pmPort), true, byte(1), uint16(1), []byte{0x34, 0}, uint64(0))
	f.Add(uint32(kvm.ExitIO), uint16(0xffff), false, byte(2), uint16(2), []byte(nil), uint64(0))
	f.Add(uint32(kvm.ExitMMIO), uint16(0), true, byte(3), uint16(8), []byte("12345678"), uint64(tapeMMIO+0xff8))
	f.Add(uint32(kvm.ExitMMIO), uint16(0), false, byte(1), uint16(2), []byte(nil), uint64(tapeMMIO-1))
	for _, r := range []kvm.ExitReason{kvm.ExitShutdown, kvm.ExitSystemEvent, kvm.ExitInternalError, kvm.ExitFailEntry, kvm.ExitIntr, kvm.ExitHLT, kvm.ExitBadData} {
		f.Add(uint32(r), uint16(0), false, byte(0), uint16(2), []byte(nil), uint64(0))
	}
	f.Fuzz(func(t *testing.T, reason uint32, port uint16, out bool, width byte, count uint16, payload []byte, addr uint64) {
		var events []devices.Event
		sink := func(e devices.Event) { events = append(events, e) }
		b, pio, mmio := fuzzBuses(t, sink)
		ex := kvm.Exit{Reason: kvm.ExitReason(reason), SystemEventType: uint32(count), InternalSuberror: uint32(count), FailEntryReason: addr}
		size := 1 << (width & 3)
		switch ex.Reason {
		case kvm.ExitIO:
			size = min(size, 4)
			n := max(1, int(count)%(maxIOData/size+1))
			data := make([]byte, n*size)
			copy(data, payload)
			ex.IO = kvm.IOExit{Port: port, Out: out, Size: size, Count: n, Data: data}
		case kvm.ExitMMIO:
			data := make([]byte, size)
			copy(data, payload)
			ex.MMIO = kvm.MMIOExit{Addr: addr, Write: out, Data: data}
		}
		sent := ex
		sent.IO.Data, sent.MMIO.Data = bytes.Clone(ex.IO.Data), bytes.Clone(ex.MMIO.Data)
		var c Counters
		stop, err := handleExit(ex, b, &c)
		checkEnding(t, ex, stop, err)
		switch ex.Reason {
		case kvm.ExitIO:
			checkIO(t, sent.IO, ex.IO.Data, pio)
		case kvm.ExitMMIO:
			checkMMIO(t, sent.MMIO, ex.MMIO.Data, mmio)
		}
		if c.PIO.Load()+c.MMIO.Load() > 1 {
			t.Fatalf("one exit counted %d port and %d MMIO exits", c.PIO.Load(), c.MMIO.Load())
		}
		for _, e := range events {
			if e != devices.Reset && e != devices.PowerOff {
				t.Fatalf("a device raised %v", e)
			}
		}
	})
}

func fuzzBuses(t *testing.T, sink devices.EventSink) (Buses, *tape, *tape) {
	b := Buses{PIO: devices.NewBus("pio"), MMIO: devices.NewBus("mmio")}
	pio, mmio := &tape{}, &tape{}
	kbd := i8042.New(sink)
	for _, r := range []struct {
		bus       *devices.Bus
		base, len uint64
		dev       devices.Device
	}{
		{b.PIO, tapePort, tapeLen, pio}, {b.PIO, 0x60, 1, kbd.DataPort()}, {b.PIO, 0x64, 1, kbd.CommandPort()},
		{b.PIO, pmPort, acpipm.Size, acpipm.New(sink, 0x0f)}, {b.MMIO, tapeMMIO, 0x1000, mmio},
	} {
		if err := r.bus.Register(r.base, r.len, "fuzz", r.dev); err != nil {
			t.Fatal(err)
		}
	}
	return b, pio, mmio
}

// checkEnding checks which exits stop the VM and which fail the vCPU.
func checkEnding(t *testing.T, ex kvm.Exit, stop *Stop, err error) {
	wantStop, wantErr := false, false
	switch ex.Reason {
	case kvm.ExitIO, kvm.ExitMMIO, kvm.ExitIntr:
	case kvm.ExitShutdown, kvm.ExitSystemEvent, kvm.ExitInternalError:
		wantStop = true
	default:
		wantErr = true
	}
	if (stop != nil) != wantStop || (err != nil) != wantErr || stop != nil && stop.Detail == "" {
		t.Fatalf("exit %v: stop %+v, err %v; want a stop %v, an error %v", ex.Reason, stop, err, wantStop, wantErr)
	}
	if ex.Reason == kvm.ExitSystemEvent {
		want := map[uint32]devices.Event{kvm.SystemEventShutdown: devices.PowerOff, kvm.SystemEventReset: devices.Reset}[ex.SystemEventType]
		if want == 0 {
			want = devices.Crash
		}
		if stop.Event != want {
			t.Fatalf("system event %d ended the VM with %v, want %v", ex.SystemEventType, stop.Event, want)
		}
	}
}

// checkIO checks that io, as sent, reached the tape as Count accesses in
// order, or the other devices without touching the tape; got is the data
// the exit carries back.
func checkIO(t *testing.T, io kvm.IOExit, got []byte, pio *tape) {
	onTape := io.Port >= tapePort && io.Port < tapePort+tapeLen
	if !onTape {
		if len(pio.log) != 0 {
			t.Fatalf("port %#x reached the device at %#x", io.Port, tapePort)
		}
		owned := io.Port == 0x60 || io.Port == 0x64 || io.Port >= pmPort && io.Port < pmPort+acpipm.Size
		if !io.Out && !owned && !bytes.Equal(got, bytes.Repeat([]byte{0xff}, len(got))) {
			t.Fatalf("IN from unowned port %#x read % x", io.Port, got[:min(len(got), 16)])
		}
		return
	}
	if len(pio.log) != io.Count {
		t.Fatalf("a %d-count exit made %d accesses", io.Count, len(pio.log))
	}
	for i, a := range pio.log {
		chunk := io.Data[i*io.Size : (i+1)*io.Size]
		if !io.Out {
			chunk = got[i*io.Size : (i+1)*io.Size]
		}
		if a.write != io.Out || a.off != uint64(io.Port-tapePort) || !bytes.Equal(a.data, chunk) {
			t.Fatalf("access %d of %d: %+v; want write %v at %d of % x", i, io.Count, a, io.Out, io.Port-tapePort, chunk)
		}
	}
}

// checkMMIO checks that m reached the tape as one access, if it is in its
// range, and that nothing else did.
func checkMMIO(t *testing.T, m kvm.MMIOExit, got []byte, mmio *tape) {
	want := 0
	if m.Addr >= tapeMMIO && m.Addr < tapeMMIO+0x1000 {
		want = 1
	}
	if len(mmio.log) != want {
		t.Fatalf("MMIO at %#x made %d accesses, want %d", m.Addr, len(mmio.log), want)
	}
	if want == 1 {
		a := mmio.log[0]
		data := m.Data
		if !m.Write {
			data = got
		}
		if a.write != m.Write || a.off != m.Addr-tapeMMIO || !bytes.Equal(a.data, data) {
			t.Fatalf("MMIO access %+v; want write %v at %#x of % x", a, m.Write, m.Addr-tapeMMIO, data)
		}
	}
}
