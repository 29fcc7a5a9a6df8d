package eventfd

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWritesAddUpAndReadResets(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, v := range []uint64{1, 2, 3} {
		if err := e.Write(v); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.Read(); err != nil || got != 6 {
		t.Fatalf("Read() = %d, %v; want 6", got, err)
	}
	if err := e.Write(1); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Read(); err != nil || got != 1 {
		t.Fatalf("second Read() = %d, %v; want 1 (counter reset by the first read)", got, err)
	}
}

// The transport hands every eventfd's descriptor to KVM before a device
// waits on it; Read must still park in the netpoller, where Close reaches
// it, not block in a system call, where it does not.
func TestCloseWakesReader(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if e.FD() < 0 {
		t.Fatalf("FD() = %d", e.FD())
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Read()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	e.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5 s after Close")
	}
}

func TestFDStaysNonBlocking(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	flags, err := unix.FcntlInt(uintptr(e.FD()), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatalf("eventfd flags %#x: O_NONBLOCK cleared", flags)
	}
}
