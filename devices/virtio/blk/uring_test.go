package blk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/internal/uring"
	"github.com/govmm/govmm/memory"
)

// ringFDs counts this process's open io_uring instances.
func ringFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.Contains(target, "io_uring") {
			n++
		}
	}
	return n
}

// Each queue gets its own ring when the disk opens, before any driver
// starts it (and before govmm's seccomp filter forbids making one); resets
// keep them and Close releases them. IOBlocking makes none. A host without
// io_uring fails here rather than quietly testing only the blocking path.
func TestRingsLiveFromOpenToClose(t *testing.T) {
	before := ringFDs(t)
	d, err := Open(Options{Path: newImage(t, make([]byte, SectorSize)), IO: IOUring})
	if err != nil {
		t.Fatal(err)
	}
	if got := ringFDs(t); got != before+NumQueues {
		t.Fatalf("%d io_uring instances open after Open, want %d", got-before, NumQueues)
	}
	for range 3 {
		start(t, d, 2)
		d.Reset()
	}
	if got := ringFDs(t); got != before+NumQueues {
		t.Fatalf("%d io_uring instances open after resets, want the same %d", got-before, NumQueues)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ringFDs(t); got != before {
		t.Fatalf("%d io_uring instances open after Close, want none", got-before)
	}
	start(t, openDisk(t, Options{Path: newImage(t, make([]byte, SectorSize)), IO: IOBlocking}), 2)
	if got := ringFDs(t); got != before {
		t.Fatalf("IOBlocking opened %d io_uring instances", got-before)
	}
}

// Without rings, IOAuto makes blocking calls and an explicit IOUring is an
// error that names the fix.
func TestWithoutRings(t *testing.T) {
	cause := fmt.Errorf("%w: the kernel cannot restrict a ring", uring.ErrUnsupported)
	if mode, err := withoutRings(Options{Path: "a.img", IO: IOAuto}, cause); mode != IOBlocking || err != nil {
		t.Errorf("IOAuto without rings: %v, %v; want blocking, no error", mode, err)
	}
	_, err := withoutRings(Options{Path: "a.img", IO: IOUring}, cause)
	if !errors.Is(err, uring.ErrUnsupported) || !strings.Contains(err.Error(), "aio=blocking") || !strings.Contains(err.Error(), "5.10") {
		t.Errorf("IOUring without rings: %v; want ErrUnsupported naming the kernel and aio=blocking", err)
	}
}

// IOAuto serves an image on tmpfs inline, with no ring, and one elsewhere
// through io_uring.
func TestAutoPicksInlineForImagesInMemory(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "govmm-blk-test")
	if err != nil {
		t.Fatalf("%v (this test needs tmpfs at /dev/shm)", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	path := filepath.Join(shm, "disk.img")
	if err := os.WriteFile(path, pattern(8*SectorSize, 3), 0o600); err != nil {
		t.Fatal(err)
	}
	d := openDisk(t, Options{Path: path})
	if d.io != IOInline {
		t.Fatalf("an image on tmpfs is served %v, want inline", d.io)
	}
	before := ringFDs(t)
	r := start(t, d, 1)
	if got := ringFDs(t); got != before {
		t.Fatalf("the inline disk opened %d io_uring instances", got-before)
	}
	c, _ := r.do([][]byte{header(typeIn, 2)}, []uint32{SectorSize, 1})
	if got := r.drvs[0].Bytes(c.Writable[0]); !bytes.Equal(got, pattern(8*SectorSize, 3)[2*SectorSize:3*SectorSize]) {
		t.Error("the inline read returned other bytes than the image's")
	}

	// procfs is no memory file system for this purpose; opening a file
	// there read-only is enough to ask.
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if inMemory(f) {
		t.Error("inMemory says /proc is a memory file system")
	}
}

// Linux keeps many requests in flight; they complete in any order, and each
// one's data and status must land in its own buffers.
func TestManyRequestsInFlight(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		const n = 64
		content := pattern(2*n*8*SectorSize, 5)
		path := newImage(t, content)
		r := start(t, openDisk(t, Options{Path: path, IO: mode}), 1)
		drv := r.drvs[0]

		heads := map[uint32]int{}
		chains := make(map[int][]byte)
		for i := range n {
			sector := uint64(i * 8)
			if i%2 == 0 {
				c := drv.AddChain([][]byte{header(typeIn, sector)}, []uint32{8 * SectorSize, 1})
				heads[uint32(c.Head)] = i
				chains[i] = nil
				defer func() {
					got := drv.Bytes(c.Writable[0])
					if !bytes.Equal(got, content[sector*SectorSize:(sector+8)*SectorSize]) {
						t.Errorf("read %d: wrong data", i)
					}
					if st := drv.Bytes(c.Writable[1])[0]; st != statusOK {
						t.Errorf("read %d: status %d", i, st)
					}
				}()
				continue
			}
			data := pattern(8*SectorSize, byte(i))
			chains[i] = data
			c := drv.AddChain([][]byte{header(typeOut, uint64(n*8)+sector), data}, []uint32{1})
			heads[uint32(c.Head)] = i
		}
		drv.Kick()
		for range n {
			u := drv.WaitUsed()
			if _, ok := heads[u.ID]; !ok {
				t.Fatalf("used id %d was not in flight (or came back twice)", u.ID)
			}
			delete(heads, u.ID)
		}
		d := r.dev
		d.Reset()
		disk, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, data := range chains {
			at := (n*8 + i*8) * SectorSize
			if data != nil && !bytes.Equal(disk[at:at+len(data)], data) {
				t.Errorf("write %d did not land in the image", i)
			}
		}
	})
}

// A driver that offers a chain again before it was used breaks the queue,
// and govmm keeps going: the first request still completes.
func TestHeadOfferedTwiceWhileInFlightBreaksTheQueue(t *testing.T) {
	r := start(t, openDisk(t, Options{Path: newImage(t, pattern(8*SectorSize, 6)), IO: IOUring}), 1)
	drv := r.drvs[0]
	c := drv.AddChain([][]byte{header(typeIn, 0)}, []uint32{SectorSize, 1})
	drv.Publish(c.Head)
	drv.Kick()
	err := drv.Notifier().WaitBroken(t)
	if !strings.Contains(err.Error(), "again before the device used it") {
		t.Fatalf("broken with %v", err)
	}
}

// An image cut shorter while the disk is attached makes reads past its new
// end fail with IOERR on both paths: the kernel's short read is finished
// with blocking calls, which then meet the end of the file.
func TestReadsPastAShrunkImageFail(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		path := newImage(t, pattern(16*SectorSize, 7))
		r := start(t, openDisk(t, Options{Path: path, IO: mode}), 1)
		if err := os.Truncate(path, 10*SectorSize); err != nil {
			t.Fatal(err)
		}
		for _, sector := range []uint64{8, 12} { // across the new end, and beyond it
			c, _ := r.do([][]byte{header(typeIn, sector)}, []uint32{4 * SectorSize, 1})
			if st := r.status(c); st != statusIOErr {
				t.Errorf("read at sector %d of an image cut to 10 sectors: status %d, want IOERR", sector, st)
			}
		}
	})
}

// Reset waits for the requests in flight: it returns with every one of them
// used, so no late completion writes into guest memory or into the next
// activation's slots; the rings stay for that activation. Each round puts
// a flush of freshly dirtied pages (which waits for the disk on a kernel
// thread) ahead of reads into a fresh driver's buffers at the same guest
// addresses: a completion from an earlier round would show as a head the
// round never offered, a wrong status, or a buffer read into unused.
func TestRingsSurviveResetsWithRequestsInFlight(t *testing.T) {
	const n = 32
	content := pattern(n*128*SectorSize, 8)
	path := newImage(t, content)
	d := openDisk(t, Options{Path: path, IO: IOUring})
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dirty := bytes.Repeat([]byte{0xd1}, 4<<20)
	mem := virtiotest.NewRAM(t, 16*memory.MiB)
	before := ringFDs(t)
	usedBeforeReset := 0
	for round := range 8 {
		// Past the disk's capacity, which was fixed when it opened.
		if _, err := f.WriteAt(dirty, int64(len(content))); err != nil {
			t.Fatal(err)
		}
		drv := virtiotest.NewDriver(t, mem, memory.MiB, queueSize, 8*memory.MiB)
		features := d.Features() | virtio.FeatureVersion1
		if err := d.Activate(virtio.Activation{Mem: mem, Features: features, Queues: []*virtio.Queue{drv.Queue(features)}}); err != nil {
			t.Fatal(err)
		}
		flush := drv.AddChain([][]byte{header(typeFlush, 0)}, []uint32{1})
		chains := map[uint32]virtiotest.Chain{}
		for i := range n {
			c := drv.AddChain([][]byte{header(typeIn, uint64(i*128))}, []uint32{128 * SectorSize, 1})
			chains[uint32(c.Head)] = c
		}
		drv.Kick()
		var used []virtiotest.Used
		if round%2 == 0 {
			time.Sleep(time.Duration(round) * 100 * time.Microsecond) // let some finish, not all
		} else {
			for range n + 1 {
				used = append(used, drv.WaitUsed())
			}
		}
		d.Reset()
		for u, ok := drv.PollUsed(); ok; u, ok = drv.PollUsed() {
			used = append(used, u)
		}
		for _, u := range used {
			if u.ID == uint32(flush.Head) {
				if st := drv.Bytes(flush.Writable[0])[0]; st != statusOK {
					t.Fatalf("round %d: flush status %d", round, st)
				}
				continue
			}
			c, ok := chains[u.ID]
			if !ok {
				t.Fatalf("round %d: used head %d, which this round never offered (or twice)", round, u.ID)
			}
			delete(chains, u.ID)
			i := int(binary.LittleEndian.Uint64(drv.Bytes(c.Readable[0])[8:]) / 128)
			want := content[i*128*SectorSize : (i+1)*128*SectorSize]
			if !bytes.Equal(drv.Bytes(c.Writable[0]), want) || drv.Bytes(c.Writable[1])[0] != statusOK {
				t.Fatalf("round %d: read %d returned other bytes or status %d", round, i, drv.Bytes(c.Writable[1])[0])
			}
			usedBeforeReset++
		}
		// What was not used was never read into: nor may it be later.
		time.Sleep(time.Millisecond)
		for _, c := range chains {
			if !bytes.Equal(drv.Bytes(c.Writable[0]), make([]byte, 128*SectorSize)) {
				t.Fatalf("round %d: a request the reset left unused was read into", round)
			}
		}
	}
	if got := ringFDs(t); got != before {
		t.Fatalf("%d io_uring instances after the resets, want the %d the disk opened with", got, before)
	}
	if usedBeforeReset == 0 {
		t.Fatal("no request was used: the resets did not let the ones in flight finish")
	}
}

// What the kernel leaves undone is finished with blocking calls: the rest of
// a short transfer, and the whole of one interrupted or cancelled before it
// started.
func TestUnfinishedTransfersAreRedone(t *testing.T) {
	img := pattern(8*SectorSize, 9)
	d := openDisk(t, Options{Path: newImage(t, img)})
	r := &ringQueue{d: d}
	for _, res := range []int32{100, -int32(unix.ECANCELED), -int32(unix.EINTR), -int32(unix.EAGAIN)} {
		a, b := make([]byte, SectorSize), make([]byte, 2*SectorSize)
		copy(a[:min(int(max(res, 0)), len(a))], img[SectorSize:]) // what a short read left
		s := &slot{rw: true, off: SectorSize, want: 3 * SectorSize, bufs: [][]byte{a, b}}
		if st := r.transferStatus(s, res); st != statusOK {
			t.Fatalf("result %d: status %d, want OK", res, st)
		}
		if got := append(a, b...); !bytes.Equal(got, img[SectorSize:4*SectorSize]) {
			t.Errorf("result %d: the redone read left other bytes than the image's", res)
		}
	}
	s := &slot{rw: true, off: 0, want: SectorSize, bufs: [][]byte{make([]byte, SectorSize)}}
	if st := r.transferStatus(s, -int32(unix.EIO)); st != statusIOErr {
		t.Errorf("result -EIO: status %d, want IOERR", st)
	}
}

// On the ring a flush waits for the disk on a kernel thread, so a read the
// driver offers after it comes back first, as it never would if the
// submitter ran fdatasync itself: the page cache holds megabytes the flush
// must write back, and the read is of data already in memory. A kernel that
// cancels the flush (see TestUnfinishedTransfersAreRedone) makes it run on
// the completer; the test allows three tries.
func TestReadsGoOnDuringAFlush(t *testing.T) {
	content := pattern(8*SectorSize, 9)
	path := newImage(t, content)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if inMemory(f) {
		// There fdatasync returns at once, and io_uring hands reads
		// to the same kernel threads as the flush, behind it.
		t.Skipf("TMPDIR (%s) is a memory file system, where a flush has nothing to wait for: set TMPDIR to a directory on a disk", os.TempDir())
	}
	r := start(t, openDisk(t, Options{Path: path, IO: IOUring}), 1)
	drv := r.drvs[0]
	dirty := bytes.Repeat([]byte{0xd1}, 32<<20)
	for try := range 3 {
		// Past the disk's capacity, which was fixed when it opened.
		if _, err := f.WriteAt(dirty, int64(len(content))); err != nil {
			t.Fatal(err)
		}
		flush := drv.AddChain([][]byte{header(typeFlush, 0)}, []uint32{1})
		read := drv.AddChain([][]byte{header(typeIn, 0)}, []uint32{SectorSize, 1})
		drv.Kick()
		first := drv.WaitUsed()
		drv.WaitUsed()
		if st := drv.Bytes(flush.Writable[0])[0]; st != statusOK {
			t.Fatalf("flush status %d, want OK", st)
		}
		if got := drv.Bytes(read.Writable[0]); !bytes.Equal(got, content[:SectorSize]) || drv.Bytes(read.Writable[1])[0] != statusOK {
			t.Fatal("the read returned the wrong data or status")
		}
		if first.ID == uint32(read.Head) {
			return
		}
		t.Logf("try %d: the flush came back before the read", try+1)
	}
	t.Fatal("a read offered after a flush waited for it three times out of three: the flush holds up the queue")
}
