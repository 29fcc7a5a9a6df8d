package rawsys

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func nonBlockingPipe(t *testing.T) (r, w uintptr) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return uintptr(p[0]), uintptr(p[1])
}

func TestReadWrite(t *testing.T) {
	r, w := nonBlockingPipe(t)
	buf := make([]byte, 16)
	if _, err := Read(r, buf); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("Read of an empty pipe = %v, want EAGAIN", err)
	}
	if n, err := Write(w, []byte("kick")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := Read(r, buf); n != 4 || err != nil || string(buf[:n]) != "kick" {
		t.Fatalf("Read = %d, %v, %q", n, err, buf[:n])
	}
	if _, err := Read(^uintptr(0), buf); !errors.Is(err, unix.EBADF) {
		t.Fatalf("Read of a bad descriptor = %v, want EBADF", err)
	}
}

func TestWritevGathersAndReusesIovecs(t *testing.T) {
	r, w := nonBlockingPipe(t)
	var iovecs []unix.Iovec
	n, err := Writev(w, [][]byte{[]byte("hdr"), nil, []byte("-frame"), {}}, &iovecs)
	if n != 9 || err != nil {
		t.Fatalf("Writev = %d, %v; want 9 bytes", n, err)
	}
	if len(iovecs) != 2 {
		t.Errorf("%d iovecs kept, want 2 (empty slices skipped)", len(iovecs))
	}
	for i, v := range iovecs {
		if v.Base != nil {
			t.Errorf("iovec %d still points at the caller's buffer", i)
		}
	}
	buf := make([]byte, 16)
	if n, _ := Read(r, buf); string(buf[:n]) != "hdr-frame" {
		t.Fatalf("pipe holds %q, want \"hdr-frame\"", buf[:n])
	}
	if n, err := Writev(w, nil, &iovecs); n != 0 || err != nil {
		t.Fatalf("Writev of nothing = %d, %v", n, err)
	}
}

func TestNanosleepSleepsAtLeastAsLongAsAsked(t *testing.T) {
	for _, d := range []time.Duration{0, 50 * time.Microsecond, 2 * time.Millisecond} {
		start := time.Now()
		Nanosleep(d)
		if got := time.Since(start); got < d {
			t.Errorf("Nanosleep(%v) returned after %v", d, got)
		}
	}
}
