package blk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
)

func TestReadReturnsFileBytes(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		content := pattern(64*SectorSize, 1)
		r := start(t, openDisk(t, Options{IO: mode, Path: newImage(t, content)}), 1)

		c, u := r.do([][]byte{header(typeIn, 3)}, []uint32{SectorSize, 2 * SectorSize, 1})
		if st := r.status(c); st != statusOK {
			t.Fatalf("status %d, want OK", st)
		}
		got := append(r.drvs[0].Bytes(c.Writable[0]), r.drvs[0].Bytes(c.Writable[1])...)
		if !bytes.Equal(got, content[3*SectorSize:6*SectorSize]) {
			t.Fatal("read data differs from the image")
		}
		if u.Len != 3*SectorSize+1 {
			t.Fatalf("used length %d, want %d", u.Len, 3*SectorSize+1)
		}
	})
}

// The spec forbids assuming any framing (§2.6.4): data may share a
// descriptor with the header and the status byte.
func TestReadAndWriteWithUnusualFraming(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		content := pattern(16*SectorSize, 2)
		path := newImage(t, content)
		r := start(t, openDisk(t, Options{IO: mode, Path: path}), 1)

		data := pattern(2*SectorSize, 99)
		out := append(header(typeOut, 4), data[:100]...)
		c, _ := r.do([][]byte{out[:10], out[10:], data[100:]}, []uint32{1})
		if st := r.status(c); st != statusOK {
			t.Fatalf("write status %d, want OK", st)
		}

		c, _ = r.do([][]byte{header(typeIn, 4)}, []uint32{2*SectorSize + 1})
		got := r.drvs[0].Bytes(c.Writable[0])
		if got[2*SectorSize] != statusOK || !bytes.Equal(got[:2*SectorSize], data) {
			t.Fatalf("read back status %d and data mismatch %v", got[2*SectorSize], !bytes.Equal(got[:2*SectorSize], data))
		}
	})
}

func TestWriteLandsInFileAndFlushSucceeds(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		content := pattern(32*SectorSize, 3)
		path := newImage(t, content)
		r := start(t, openDisk(t, Options{IO: mode, Path: path}), 1)

		data := pattern(3*SectorSize, 42)
		c, u := r.do([][]byte{header(typeOut, 7), data[:SectorSize], data[SectorSize:]}, []uint32{1})
		if st := r.status(c); st != statusOK || u.Len != 1 {
			t.Fatalf("write: status %d used %d, want OK and 1", st, u.Len)
		}
		c, _ = r.do([][]byte{header(typeFlush, 0)}, []uint32{1})
		if st := r.status(c); st != statusOK {
			t.Fatalf("flush status %d, want OK", st)
		}

		disk, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append(append([]byte{}, content[:7*SectorSize]...), data...), content[10*SectorSize:]...)
		if !bytes.Equal(disk, want) {
			t.Fatal("image content after write differs")
		}
	})
}

func TestReadOnlyDiskRefusesWrites(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		content := pattern(8*SectorSize, 4)
		path := newImage(t, content)
		d := openDisk(t, Options{IO: mode, Path: path, ReadOnly: true})
		if d.Features()&featureRO == 0 || d.Features()&(featureDiscard|featureWriteZeroes) != 0 {
			t.Fatalf("read-only features %#x: want RO and no discard/write-zeroes", d.Features())
		}
		r := start(t, d, 1)

		c, _ := r.do([][]byte{header(typeOut, 0), make([]byte, SectorSize)}, []uint32{1})
		if st := r.status(c); st != statusIOErr {
			t.Fatalf("write on read-only disk: status %d, want IOERR", st)
		}
		c, _ = r.do([][]byte{header(typeWriteZeroes, 0), segment(0, 8, 0)}, []uint32{1})
		if st := r.status(c); st != statusUnsupp {
			t.Fatalf("write-zeroes on read-only disk: status %d, want UNSUPP", st)
		}
		c, _ = r.do([][]byte{header(typeIn, 0)}, []uint32{SectorSize, 1})
		if st := r.status(c); st != statusOK {
			t.Fatalf("read on read-only disk: status %d, want OK", st)
		}
		if disk, _ := os.ReadFile(path); !bytes.Equal(disk, content) {
			t.Fatal("read-only image changed")
		}
	})
}

func TestDiscardPunchesHoles(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		const size = 4 << 20
		path := newImage(t, pattern(size, 5))
		before := allocated(t, path)
		requirePunchHole(t, path)

		r := start(t, openDisk(t, Options{IO: mode, Path: path}), 1)
		c, _ := r.do([][]byte{header(typeDiscard, 0), segment(0, size/SectorSize/2, 0), segment(size/SectorSize/2, size/SectorSize/2, 0)}, []uint32{1})
		if st := r.status(c); st != statusOK {
			t.Fatalf("discard status %d, want OK", st)
		}
		if after := allocated(t, path); after >= before/2 {
			t.Fatalf("allocated %d bytes after discarding everything, %d before", after, before)
		}
		if fi, _ := os.Stat(path); fi.Size() != size {
			t.Fatalf("discard changed the image size to %d", fi.Size())
		}
	})
}

func TestWriteZeroes(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		const size = 64 * SectorSize
		content := pattern(size, 6)
		path := newImage(t, content)
		r := start(t, openDisk(t, Options{IO: mode, Path: path}), 1)

		c, _ := r.do([][]byte{header(typeWriteZeroes, 0), segment(2, 3, 0), segment(40, 8, flagUnmap)}, []uint32{1})
		if st := r.status(c); st != statusOK {
			t.Fatalf("write-zeroes status %d, want OK", st)
		}
		want := bytes.Clone(content)
		clear(want[2*SectorSize : 5*SectorSize])
		clear(want[40*SectorSize : 48*SectorSize])
		if disk, _ := os.ReadFile(path); !bytes.Equal(disk, want) {
			t.Fatal("image after write-zeroes differs")
		}
	})
}

func TestGetIDReturnsSerial(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		r := start(t, openDisk(t, Options{IO: mode, Path: newImage(t, make([]byte, SectorSize)), Serial: "govmm-disk-1"}), 1)
		c, _ := r.do([][]byte{header(typeGetID, 0)}, []uint32{idBytes, 1})
		if st := r.status(c); st != statusOK {
			t.Fatalf("get-id status %d", st)
		}
		want := make([]byte, idBytes)
		copy(want, "govmm-disk-1")
		if got := r.drvs[0].Bytes(c.Writable[0]); !bytes.Equal(got, want) {
			t.Fatalf("serial %q, want %q", got, want)
		}
	})
}

func TestOutOfRangeIsIOErrAndDoesNotGrowFile(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		const sectors = 16
		path := newImage(t, pattern(sectors*SectorSize, 7))
		r := start(t, openDisk(t, Options{IO: mode, Path: path}), 1)

		for _, sector := range []uint64{sectors, sectors - 1, 1 << 55, 1<<64 - 1} {
			c, _ := r.do([][]byte{header(typeOut, sector), make([]byte, 2*SectorSize)}, []uint32{1})
			if st := r.status(c); st != statusIOErr {
				t.Errorf("write at sector %d: status %d, want IOERR", sector, st)
			}
			c, _ = r.do([][]byte{header(typeIn, sector)}, []uint32{2 * SectorSize, 1})
			if st := r.status(c); st != statusIOErr {
				t.Errorf("read at sector %d: status %d, want IOERR", sector, st)
			}
			c, _ = r.do([][]byte{header(typeWriteZeroes, 0), segment(sector, 2, 0)}, []uint32{1})
			if st := r.status(c); st != statusIOErr {
				t.Errorf("write-zeroes at sector %d: status %d, want IOERR", sector, st)
			}
		}
		c, _ := r.do([][]byte{header(typeOut, 0), make([]byte, 100)}, []uint32{1})
		if st := r.status(c); st != statusIOErr {
			t.Errorf("write of 100 bytes: status %d, want IOERR", st)
		}
		if fi, _ := os.Stat(path); fi.Size() != sectors*SectorSize {
			t.Fatalf("image grew to %d bytes", fi.Size())
		}
	})
}

func TestUnsupportedRequestType(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		r := start(t, openDisk(t, Options{IO: mode, Path: newImage(t, make([]byte, SectorSize))}), 1)
		c, _ := r.do([][]byte{header(99, 0)}, []uint32{1})
		if st := r.status(c); st != statusUnsupp {
			t.Fatalf("status %d, want UNSUPP", st)
		}
	})
}

func TestMalformedChainsBreakTheQueue(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		for name, tc := range map[string]struct {
			readable [][]byte
			writable []uint32
		}{
			"no status byte":  {[][]byte{header(typeIn, 0)}, nil},
			"short header":    {[][]byte{header(typeIn, 0)[:8]}, []uint32{1}},
			"no readable":     {nil, []uint32{SectorSize, 1}},
			"empty writables": {[][]byte{header(typeFlush, 0)}, []uint32{0, 0}},
		} {
			t.Run(name, func(t *testing.T) {
				r := start(t, openDisk(t, Options{IO: mode, Path: newImage(t, make([]byte, SectorSize))}), 1)
				r.drvs[0].AddChain(tc.readable, tc.writable)
				r.drvs[0].Kick()
				err := r.drvs[0].Notifier().WaitBroken(t)
				if !strings.Contains(err.Error(), "virtio-blk") {
					t.Fatalf("broken with %v", err)
				}
				r.drvs[0].ExpectNoUsed(20 * time.Millisecond)
			})
		}
	})
}

func TestTwoQueuesServedConcurrently(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		content := pattern(128*SectorSize, 8)
		r := start(t, openDisk(t, Options{IO: mode, Path: newImage(t, content)}), 2)
		var wg sync.WaitGroup
		for q := range 2 {
			wg.Go(func() {
				for i := range 20 {
					sector := uint64(q*64 + i)
					c, _ := r.doOn(q, [][]byte{header(typeIn, sector)}, []uint32{SectorSize, 1})
					got := r.drvs[q].Bytes(c.Writable[0])
					if !bytes.Equal(got, content[sector*SectorSize:(sector+1)*SectorSize]) {
						t.Errorf("queue %d sector %d: wrong data", q, sector)
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestResetStopsWorkersAndAllowsReactivation(t *testing.T) {
	eachPath(t, func(t *testing.T, mode IOMode) {
		d := openDisk(t, Options{IO: mode, Path: newImage(t, make([]byte, SectorSize))})
		d.Reset() // never activated
		r := start(t, d, 2)
		d.Reset()
		if err := d.Activate(virtio.Activation{Mem: r.mem, Queues: []*virtio.Queue{r.drvs[0].Queue(0), nil}}); err != nil {
			t.Fatal(err)
		}
		if err := d.Activate(virtio.Activation{Mem: r.mem}); err == nil {
			t.Fatal("second Activate without Reset succeeded")
		}
	})
}

func TestConfigSpace(t *testing.T) {
	d := openDisk(t, Options{Path: newImage(t, make([]byte, 1000*SectorSize+100))})
	le := binary.LittleEndian
	read := func(off uint64, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0xff
		}
		d.ReadConfig(off, b)
		return b
	}
	if got := le.Uint64(read(cfgCapacity, 8)); got != 1000 {
		t.Errorf("capacity %d sectors, want 1000 (the 100-byte tail is not a sector)", got)
	}
	if got := le.Uint32(read(cfgSegMax, 4)); got != queueSize-2 {
		t.Errorf("seg_max %d", got)
	}
	if got := le.Uint32(read(cfgBlkSize, 4)); got != 512 {
		t.Errorf("blk_size %d", got)
	}
	if got := le.Uint16(read(cfgNumQueues, 2)); got != NumQueues {
		t.Errorf("num_queues %d", got)
	}
	if got := read(cfgWriteZeroesMayUnmap, 1)[0]; got != 1 {
		t.Errorf("write_zeroes_may_unmap %d", got)
	}
	if got := read(configSize-2, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("bytes across the end of the configuration read %x", got)
	}
	if got := read(1<<63, 4); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("far offset read %x", got)
	}
	d.WriteConfig(cfgCapacity, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	if got := le.Uint64(read(cfgCapacity, 8)); got != 1000 {
		t.Errorf("capacity writable: %d", got)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(Options{Path: filepath.Join(dir, "missing.img")})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `open disk "`) {
		t.Errorf("missing image: %v", err)
	}
	if _, err := Open(Options{Path: dir}); err == nil {
		t.Error("a directory opened as a disk")
	}
	path := newImage(t, make([]byte, SectorSize))
	if _, err := Open(Options{Path: path, Serial: strings.Repeat("x", 21)}); err == nil || !strings.Contains(err.Error(), "serial") {
		t.Errorf("long serial: %v", err)
	}

	openDisk(t, Options{Path: path})
	if _, err := Open(Options{Path: path}); !errors.Is(err, ErrLocked) {
		t.Errorf("second read-write open of one image: %v, want ErrLocked", err)
	}
	ro := newImage(t, make([]byte, SectorSize))
	openDisk(t, Options{Path: ro, ReadOnly: true})
	openDisk(t, Options{Path: ro, ReadOnly: true})
}

func TestOpenSuggestsReadOnly(t *testing.T) {
	path := newImage(t, make([]byte, SectorSize))
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		f.Close()
		t.Skip("running as root: a 0444 file opens read-write, nothing to refuse")
	}
	_, err := Open(Options{Path: path})
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), ",ro") {
		t.Fatalf("read-only file opened read-write: %v", err)
	}
	openDisk(t, Options{Path: path, ReadOnly: true})
}

// allocated is the space the file occupies on disk.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// requirePunchHole skips, saying why, where t.TempDir's filesystem cannot
// punch holes: the test would prove nothing there.
func requirePunchHole(t *testing.T, path string) {
	t.Helper()
	probe := path + ".probe"
	if err := os.WriteFile(probe, make([]byte, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(probe)
	f, err := os.OpenFile(probe, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 1<<16); err != nil {
		t.Skipf("%s cannot punch holes (%v); set TMPDIR to ext4, xfs or tmpfs", filepath.Dir(path), err)
	}
}
