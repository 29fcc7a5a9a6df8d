package uring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/internal/eventfd"
	"github.com/govmm/govmm/internal/rawsys"
)

// newRing returns a ring for f whose completions signal the returned
// eventfd. A machine without io_uring fails the test: the disk's fast path
// would go untested otherwise.
func newRing(t *testing.T, entries uint32, f *os.File) (*Ring, *eventfd.EventFD) {
	t.Helper()
	ev, err := eventfd.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	r, err := New(entries, fileFD(t, f), ev.FD())
	if err != nil {
		t.Fatalf("%v (govmm's disks fall back to blocking calls without io_uring, but these tests need it)", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r, ev
}

// waitFor reaps until n completions arrived, waiting on the eventfd between.
func waitFor(t *testing.T, r *Ring, ev *eventfd.EventFD, n int) map[uint64]int32 {
	t.Helper()
	got := map[uint64]int32{}
	for len(got) < n {
		r.Reap(func(c Completion) { got[c.Tag] = c.Res })
		if len(got) < n {
			if _, err := ev.Read(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return got
}

// complete prepares one operation with tag 1, submits it and returns its
// result. A kernel that fails to start an io-wq worker for the operation
// cancels it (Linux 6.1 does, now and then, for a thread's first request);
// callers redo those, and so does this.
func complete(t *testing.T, r *Ring, ev *eventfd.EventFD, prepare func(tag uint64) bool) int32 {
	t.Helper()
	const tag = 1
	for range 5 {
		if !prepare(tag) {
			t.Fatal("an empty ring refused an entry")
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		res := waitFor(t, r, ev, 1)[tag]
		if res != -int32(unix.ECANCELED) {
			return res
		}
		t.Log("the kernel cancelled the request; redoing it")
	}
	t.Fatal("the kernel cancelled the same request 5 times")
	return 0
}

// transfer reads or writes bufs at off of the ring's file and returns the
// result.
func transfer(t *testing.T, r *Ring, ev *eventfd.EventFD, write bool, bufs [][]byte, off int64) int32 {
	t.Helper()
	iov := rawsys.AppendIovecs(nil, bufs)
	return complete(t, r, ev, func(tag uint64) bool { return r.PrepareVectored(write, iov, off, tag) })
}

func fileFD(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(v uintptr) { fd = int(v) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// newFile creates an empty file in t.TempDir, closed when the test ends.
func newFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestVectoredWriteThenReadBack(t *testing.T) {
	f := newFile(t)
	r, ev := newRing(t, 8, f)

	a, b := bytes.Repeat([]byte("a"), 4096), bytes.Repeat([]byte("b"), 100)
	if n := transfer(t, r, ev, true, [][]byte{a, b}, 512); n != int32(len(a)+len(b)) {
		t.Fatalf("writev completed with %d, want %d bytes written", n, len(a)+len(b))
	}
	if !r.PrepareNop(2) {
		t.Fatal("an empty ring refused a no-op")
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if got := waitFor(t, r, ev, 1); got[2] != 0 {
		t.Fatalf("no-op completions %v, want tag 2: 0", got)
	}
	onDisk, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append(make([]byte, 512), a...), b...); !bytes.Equal(onDisk, want) {
		t.Fatalf("file holds %d bytes that differ from the %d written at offset 512", len(onDisk), len(want)-512)
	}

	x, y := make([]byte, 10), make([]byte, 4096)
	// The read stops at the end of the file: 6 a's and 100 b's.
	if n := transfer(t, r, ev, false, [][]byte{x, y}, 512+4090); n != 106 {
		t.Fatalf("read completed with %d, want 106 (short at end of file)", n)
	}
	if string(x) != "aaaaaabbbb" || !bytes.Equal(y[:96], b[:96]) {
		t.Fatalf("read back %q %q…", x, y[:8])
	}
}

func TestErrorsArriveAsNegatedErrno(t *testing.T) {
	ro, err := os.Open(newFile(t).Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, ev := newRing(t, 4, ro)
	if res := transfer(t, r, ev, true, [][]byte{make([]byte, 16)}, 0); syscall.Errno(-res) != unix.EBADF {
		t.Fatalf("writev to a file opened read-only completed with %d, want -EBADF", res)
	}
}

// datasync syncs the ring's file and returns the result.
func datasync(t *testing.T, r *Ring, ev *eventfd.EventFD) int32 {
	t.Helper()
	return complete(t, r, ev, r.PrepareDatasync)
}

func TestDatasyncSyncsAFileAndRefusesAPipe(t *testing.T) {
	r, ev := newRing(t, 4, newFile(t))
	if n := transfer(t, r, ev, true, [][]byte{bytes.Repeat([]byte("d"), 8192)}, 0); n != 8192 {
		t.Fatalf("writev completed with %d, want 8192", n)
	}
	if res := datasync(t, r, ev); res != 0 {
		t.Fatalf("datasync of a file completed with %d, want 0", res)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	// fdatasync(2) of a pipe fails with EINVAL: the operation reached the
	// kernel as a sync of the ring's file, not as a no-op.
	r, ev = newRing(t, 4, pw)
	if res := datasync(t, r, ev); syscall.Errno(-res) != unix.EINVAL {
		t.Fatalf("datasync of a pipe completed with %d, want -EINVAL", res)
	}
}

func TestFullQueueRefusesUntilSubmitted(t *testing.T) {
	r, ev := newRing(t, 4, newFile(t))
	for i := range 4 {
		if !r.PrepareNop(uint64(i)) {
			t.Fatalf("entry %d of 4 refused", i)
		}
	}
	if r.PrepareNop(99) {
		t.Fatal("a fifth entry was accepted by a 4-entry submission queue")
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if !r.PrepareNop(4) {
		t.Fatal("the queue stayed full after Submit")
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, r, ev, 5)
	for i := range uint64(5) {
		if res, ok := got[i]; !ok || res != 0 {
			t.Errorf("tag %d: %d, %v; want a 0 result", i, res, ok)
		}
	}
}

func TestManyRoundsReuseTheRings(t *testing.T) {
	r, ev := newRing(t, 2, newFile(t))
	for i := range uint64(100) {
		if !r.PrepareNop(i) {
			t.Fatalf("round %d: ring full", i)
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		if got := waitFor(t, r, ev, 1); len(got) != 1 || got[i] != 0 {
			t.Fatalf("round %d: completions %v", i, got)
		}
	}
}

func TestNewRejectsBadSizes(t *testing.T) {
	fd := fileFD(t, newFile(t))
	for _, n := range []uint32{0, maxEntries + 1} {
		if _, err := New(n, fd, -1); err == nil || errors.Is(err, ErrUnsupported) {
			t.Fatalf("New(%d): %v, want an error that is not ErrUnsupported", n, err)
		}
	}
}
