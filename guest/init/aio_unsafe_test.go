package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

func TestAIOStructsMatchTheKernelABI(t *testing.T) {
	if s := unsafe.Sizeof(iocb{}); s != 64 {
		t.Errorf("iocb is %d bytes, want 64", s)
	}
	if s := unsafe.Sizeof(ioEvent{}); s != 32 {
		t.Errorf("io_event is %d bytes, want 32", s)
	}
	if o := unsafe.Offsetof(iocb{}.fd); o != 20 {
		t.Errorf("aio_fildes at %d, want 20", o)
	}
	if o := unsafe.Offsetof(iocb{}.offset); o != 40 {
		t.Errorf("aio_offset at %d, want 40", o)
	}
}

func TestAIOReadsLandInTheirBuffers(t *testing.T) {
	const blocks, depth = 32, 4
	content := make([]byte, blocks*4096)
	for i := range content {
		content[i] = byte(i/4096) + 1
	}
	path := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := newAIO(depth)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	buf, free, err := alignedBuffer(depth * 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	var reads []aioRead
	for slot, block := range []int{7, 0, 31, 12} {
		reads = append(reads, aioRead{fd: int(f.Fd()), buf: buf[slot*4096 : (slot+1)*4096], off: int64(block) * 4096, tag: uint64(block)})
	}
	if err := a.submit(reads); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]int64{}
	for len(got) < depth {
		if err := a.wait(1, func(tag uint64, res int64) { got[tag] = res }); err != nil {
			t.Fatal(err)
		}
	}
	for slot, r := range reads {
		if got[r.tag] != 4096 {
			t.Errorf("read of block %d: result %d, want 4096", r.tag, got[r.tag])
		}
		if b := buf[slot*4096]; b != byte(r.tag)+1 || buf[slot*4096+4095] != b {
			t.Errorf("buffer %d holds block %d's bytes, want block %d's", slot, b-1, r.tag)
		}
	}
	if err := a.submit(make([]aioRead, depth+1)); err == nil {
		t.Error("submitting more reads than the depth was accepted")
	}
}

func TestRandomReadsReadTheDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(path, make([]byte, 64*4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_DIRECT, 0); err != nil {
		t.Skipf("TMPDIR (%s) takes no O_DIRECT (%v): set TMPDIR to a directory on a disk", os.TempDir(), err)
	} else {
		f.Close()
	}
	for _, c := range []struct{ ops, depth uint64 }{{1, 8}, {500, 8}, {7, 1}} {
		if err := randomReads(path, c.ops, int(c.depth)); err != nil {
			t.Errorf("%d reads, %d in flight: %v", c.ops, c.depth, err)
		}
	}
	small := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(small, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := randomReads(small, 1, 1); err == nil || !strings.Contains(err.Error(), "100 bytes") {
		t.Errorf("a 100-byte disk: %v, want an error about its size", err)
	}
}
