package uring

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// raw queues one entry as fill leaves it, flags included, for tag 1.
func raw(r *Ring, fill func(e *sqe)) func(tag uint64) bool {
	return func(tag uint64) bool {
		e := r.next()
		if e == nil {
			return false
		}
		fill(e)
		e.userData = tag
		return true
	}
}

// A ring runs the operations a disk needs on its own file and refuses
// anything else with -EACCES in the completion: an open (which would
// reach any file the process can see), a read of another descriptor, an
// entry with a flag beyond IOSQE_FIXED_FILE. The kernel must be 5.10 or
// later (restrictions), as a disk on io_uring requires.
func TestRestrictedRingRefusesWhatADiskDoesNotDo(t *testing.T) {
	f := newFile(t)
	r, ev := newRing(t, 4, f)
	if n := transfer(t, r, ev, true, [][]byte{[]byte("allowed")}, 0); n != 7 {
		t.Fatalf("writev of the ring's file completed with %d, want 7", n)
	}
	if res := complete(t, r, ev, r.PrepareNop); res != 0 {
		t.Fatalf("no-op completed with %d, want 0", res)
	}

	target := filepath.Join(t.TempDir(), "created-through-the-ring")
	path, err := unix.BytePtrFromString(target)
	if err != nil {
		t.Fatal(err)
	}
	other := newFile(t)
	if err := os.WriteFile(other.Name(), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	iov := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	for name, fill := range map[string]func(e *sqe){
		"openat": func(e *sqe) {
			e.opcode, e.flags, e.fd = opOpenat, 0, unix.AT_FDCWD
			e.addr = uint64(uintptr(unsafe.Pointer(path)))
			e.rwFlags = unix.O_CREAT | unix.O_WRONLY
			e.len = 0o600
		},
		"readv of another descriptor": func(e *sqe) {
			e.opcode, e.flags, e.fd = opReadv, 0, int32(fileFD(t, other))
			e.addr, e.len = uint64(uintptr(unsafe.Pointer(&iov[0]))), 1
		},
		"IOSQE_ASYNC": func(e *sqe) {
			e.opcode, e.flags = opNop, sqeFixedFile|1<<4
		},
	} {
		if res := complete(t, r, ev, raw(r, fill)); syscall.Errno(-res) != unix.EACCES {
			t.Errorf("%s completed with %d, want -EACCES", name, res)
		}
	}
	if _, err := os.Stat(target); err == nil {
		t.Error("the ring created a file")
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Errorf("the ring read %q from another descriptor", buf)
	}
}

// No io_uring_register reaches a restricted ring: none is allowed once it
// runs, so nothing can add a file or undo the restrictions.
func TestRestrictedRingRefusesRegistration(t *testing.T) {
	r, _ := newRing(t, 4, newFile(t))
	efd := int32(0)
	if err := r.register(registerEventFD, unsafe.Pointer(&efd), 1); err != unix.EACCES {
		t.Errorf("io_uring_register eventfd on a running ring: %v, want EACCES", err)
	}
	res := restrictions()
	if err := r.register(registerRestrictions, unsafe.Pointer(&res[0]), len(res)); err == nil {
		t.Error("io_uring_register restrictions on a running ring succeeded")
	}
}

// What a failed Submit left in the queue runs as a no-op at the next one,
// tagged Dropped, and does not touch the buffers it once named.
func TestDroppedEntriesTouchNothing(t *testing.T) {
	f := newFile(t)
	if err := os.WriteFile(f.Name(), []byte("on disk"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, ev := newRing(t, 4, f)
	buf := make([]byte, 7)
	iov := []unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}
	if !r.PrepareVectored(false, iov, 0, 7) {
		t.Fatal("an empty ring refused an entry")
	}
	// As Submit does before io_uring_enter fails.
	atomic.StoreUint32(r.sqTail, *r.sqTail+r.prepared)
	r.prepared = 0
	r.dropUnsubmitted()
	if r.Unsubmitted() != 1 {
		t.Fatalf("%d entries unsubmitted, want the dropped one", r.Unsubmitted())
	}
	if !r.PrepareNop(1) {
		t.Fatal("no room after a dropped entry")
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, r, ev, 2)
	if res, ok := got[Dropped]; !ok || res != 0 || got[1] != 0 || len(got) != 2 {
		t.Fatalf("completions %v, want a 0 result for tag 1 and for Dropped", got)
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Errorf("the dropped read filled its buffer: %q", buf)
	}
}
