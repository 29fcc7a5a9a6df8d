package kvm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Stats is an open binary statistics fd of a VM or vCPU
// (api.rst, "KVM_GET_STATS_FD"), read without debugfs. Exit counters such as
// "exits", "io_exits", "mmio_exits" and "halt_exits" are per vCPU; the VM's
// own fd carries VM-wide ones such as "remote_tlb_flush". Names and meanings
// are the kernel's and vary between versions.
type Stats struct {
	f     *os.File
	descs []statDesc
	data  []byte // scratch for the data block
	base  int64  // data_offset
}

type statDesc struct {
	name   string
	offset uint32 // bytes into the data block
	size   uint16 // number of u64 values
}

const (
	statsHeaderSize = 24
	statsDescFixed  = 16 // struct kvm_stats_desc before its name
	maxStatsBytes   = 1 << 20
	maxStatsName    = 4096 // KVM_STATS_NAME_SIZE is 48
)

func openStats(fd uintptr, what string) (*Stats, error) {
	sfd, err := ioctl(fd, kvmGetStatsFD, 0)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		// A kernel that predates the ioctl does not know its number.
		return nil, fmt.Errorf("KVM_GET_STATS_FD of %s: %w: %w", what, ErrNoStats, err)
	}
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_STATS_FD of %s (needs %v, Linux 5.14+): %w", what, CapBinaryStatsFD, err)
	}
	s := &Stats{f: os.NewFile(sfd, "kvm-stats")}
	if err := s.parse(); err != nil {
		return nil, errors.Join(fmt.Errorf("statistics of %s: %w", what, err), s.f.Close())
	}
	return s, nil
}

// parse reads the header and descriptors, which never change for an fd.
func (s *Stats) parse() error {
	hb := make([]byte, statsHeaderSize)
	if _, err := s.f.ReadAt(hb, 0); err != nil {
		return err
	}
	var h statsHeader
	if err := binary.Read(bytes.NewReader(hb), binary.LittleEndian, &h); err != nil {
		return err
	}
	if h.NameSize == 0 || h.NameSize > maxStatsName || h.NumDesc > maxStatsBytes/statsDescFixed {
		return fmt.Errorf("implausible header %+v", h)
	}
	descSize := statsDescFixed + int(h.NameSize)
	total := int(h.NumDesc) * descSize
	db := make([]byte, total)
	if _, err := s.f.ReadAt(db, int64(h.DescOffset)); err != nil {
		return err
	}
	var dataEnd uint64
	for i := 0; i < int(h.NumDesc); i++ {
		d := db[i*descSize : (i+1)*descSize]
		sd := statDesc{
			size:   binary.LittleEndian.Uint16(d[6:]),
			offset: binary.LittleEndian.Uint32(d[8:]),
			name:   string(bytes.TrimRight(d[statsDescFixed:], "\x00")),
		}
		dataEnd = max(dataEnd, uint64(sd.offset)+8*uint64(sd.size))
		s.descs = append(s.descs, sd)
	}
	if dataEnd > maxStatsBytes {
		return fmt.Errorf("implausible data block of %d bytes", dataEnd)
	}
	s.data = make([]byte, dataEnd)
	s.base = int64(h.DataOffset)
	return nil
}

// Read returns the current value of every statistic by name, whether KVM
// marks it cumulative, instant or peak. A statistic with several values (a
// histogram's buckets) is reported as their sum, which for a histogram is
// the number of samples. Units and exponents are not applied.
func (s *Stats) Read() (map[string]uint64, error) {
	if _, err := s.f.ReadAt(s.data, s.base); err != nil {
		return nil, fmt.Errorf("read KVM statistics: %w", err)
	}
	out := make(map[string]uint64, len(s.descs))
	for _, d := range s.descs {
		var sum uint64
		for i := 0; i < int(d.size); i++ {
			sum += binary.LittleEndian.Uint64(s.data[int(d.offset)+8*i:])
		}
		out[d.name] = sum
	}
	return out, nil
}

// Close closes the statistics fd.
func (s *Stats) Close() error { return s.f.Close() }
