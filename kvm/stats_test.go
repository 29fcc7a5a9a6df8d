package kvm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

type fakeStat struct {
	name   string
	values []uint64
}

// statsFile lays out a binary statistics file as api.rst describes it for
// KVM_GET_STATS_FD: header, id string, descriptors, then the data block.
func statsFile(t *testing.T, nameSize uint32, stats []fakeStat) *os.File {
	t.Helper()
	le := binary.LittleEndian
	descSize := statsDescFixed + int(nameSize)
	descOff := statsHeaderSize + int(nameSize)
	dataOff := descOff + len(stats)*descSize
	buf := make([]byte, dataOff)
	hdr := []uint32{0, nameSize, uint32(len(stats)), statsHeaderSize, uint32(descOff), uint32(dataOff)}
	for i, v := range hdr {
		le.PutUint32(buf[4*i:], v)
	}
	copy(buf[statsHeaderSize:], "kvm-1234")
	var data []byte
	for i, s := range stats {
		d := buf[descOff+i*descSize:]
		le.PutUint16(d[6:], uint16(len(s.values)))
		le.PutUint32(d[8:], uint32(len(data)))
		copy(d[statsDescFixed:statsDescFixed+int(nameSize)-1], s.name)
		for _, v := range s.values {
			data = le.AppendUint64(data, v)
		}
	}
	path := filepath.Join(t.TempDir(), "stats")
	if err := os.WriteFile(path, append(buf, data...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func TestStatsParseAndRead(t *testing.T) {
	f := statsFile(t, 48, []fakeStat{{"exits", []uint64{7}}, {"halt_wait_hist", []uint64{1, 2, 3}}, {"io_exits", []uint64{5}}})
	s := &Stats{f: f}
	if err := s.parse(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"exits": 7, "halt_wait_hist": 6, "io_exits": 5}
	if len(got) != len(want) {
		t.Errorf("read %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}

func TestStatsRejectsImplausibleHeader(t *testing.T) {
	for _, nameSize := range []uint32{0, 1 << 30} {
		s := &Stats{f: statsFile(t, 48, []fakeStat{{"exits", []uint64{1}}})}
		// Rewrite name_size in place through a second, writable handle.
		w, err := os.OpenFile(s.f.Name(), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(binary.LittleEndian.AppendUint32(nil, nameSize), 4); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.parse(); err == nil {
			t.Errorf("name_size %d accepted", nameSize)
		}
	}
}

func TestStatsTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(path, make([]byte, 10), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Stats{f: f}).parse(); err == nil {
		t.Error("a 10-byte statistics file parsed")
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}

// A kernel without KVM_GET_STATS_FD answers the unknown ioctl with ENOTTY,
// as any file that is not KVM's does: that is "no statistics", not a
// failure.
func TestStatsOnAKernelWithoutThem(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := openStats(f.Fd(), "vCPU 0")
	if s != nil || !errors.Is(err, ErrNoStats) || !errors.Is(err, unix.ENOTTY) {
		t.Fatalf("openStats on a file without the ioctl: %v, %v; want ErrNoStats wrapping ENOTTY", s, err)
	}
}
