package tap

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// noAllocs fails t if f, run 100 times after a warm-up run, allocated on
// the heap (virtiotest.NoAllocs, kept here so this package stays on x/sys).
func noAllocs(t *testing.T, what string, f func()) {
	t.Helper()
	if avg := testing.AllocsPerRun(100, f); avg != 0 {
		t.Errorf("%s: %v heap allocations per run in steady state; want 0", what, avg)
	}
}

// socketTap is a Tap on one end of a datagram socket pair, which keeps frame
// boundaries as a tap does, and the other end for the test: no root needed.
func socketTap(t *testing.T) (*Tap, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := newTap(fds[0], "pair")
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tp.Close()
		unix.Close(fds[1])
	})
	return tp, fds[1]
}

// Reading and writing a frame allocates nothing: the device's receiver and
// transmitter call these once per frame.
func TestReadAndWritevAllocateNothing(t *testing.T) {
	tp, peer := socketTap(t)
	frame := make([]byte, HeaderLen+1500)
	for i := range frame {
		frame[i] = byte(i * 7)
	}
	iov := [][]byte{frame[:HeaderLen], frame[HeaderLen:100], frame[100:]}
	got := make([]byte, len(frame)+1)
	noAllocs(t, "Writev", func() {
		if n, err := tp.Writev(iov); n != len(frame) || err != nil {
			t.Fatalf("Writev = %d, %v; want %d", n, err, len(frame))
		}
		if n, err := unix.Read(peer, got); n != len(frame) || err != nil || !bytes.Equal(got[:n], frame) {
			t.Fatalf("the peer read %d bytes, %v; want the %d-byte frame", n, err, len(frame))
		}
	})
	noAllocs(t, "Read and ReadNow", func() {
		if _, err := tp.ReadNow(got); !errors.Is(err, ErrNoFrame) {
			t.Fatalf("ReadNow with nothing queued = %v; want ErrNoFrame", err)
		}
		if _, err := unix.Write(peer, frame); err != nil {
			t.Fatal(err)
		}
		if n, err := tp.Read(got); n != len(frame) || err != nil || !bytes.Equal(got[:n], frame) {
			t.Fatalf("Read = %d, %v; want the %d-byte frame", n, err, len(frame))
		}
	})
}
