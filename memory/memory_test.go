package memory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayoutBelowAndAboveTheHole(t *testing.T) {
	for _, tc := range []struct {
		size      uint64
		regions   int
		lowEnd    GuestAddress
		lastStart GuestAddress
	}{
		{256 * MiB, 1, 256 * MiB, 0},
		{3 * GiB, 1, LowRAMTop, 0},
		{4 * GiB, 2, LowRAMTop, HighRAMStart},
	} {
		m, err := New(tc.size)
		if err != nil {
			t.Fatalf("New(%d): %v", tc.size, err)
		}
		maps := m.Mappings()
		if len(maps) != tc.regions || m.LowEnd() != tc.lowEnd || maps[len(maps)-1].Guest != tc.lastStart {
			t.Errorf("size %d MiB: mappings %+v, low end %v", tc.size/MiB, maps, m.LowEnd())
		}
		var total uint64
		for _, mp := range maps {
			total += mp.Size
			if mp.Host%hugePage != 0 {
				t.Errorf("mapping at %v: host address %#x is not 2 MiB aligned", mp.Guest, mp.Host)
			}
		}
		if total != tc.size {
			t.Errorf("mappings add up to %d, want %d", total, tc.size)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestE820(t *testing.T) {
	m, err := New(4 * GiB)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := []E820Entry{
		{0, uint64(EBDAStart), E820RAM},
		{EBDAStart, uint64(BIOSEnd - EBDAStart), E820Reserved},
		{BIOSEnd, uint64(LowRAMTop - BIOSEnd), E820RAM},
		{HighRAMStart, 1 * GiB, E820RAM},
	}
	got := m.E820()
	if len(got) != len(want) {
		t.Fatalf("e820 = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("e820[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	var ram uint64
	for _, e := range got {
		if e.Type == E820RAM {
			ram += e.Size
		}
	}
	if reserved := uint64(BIOSEnd - EBDAStart); ram+reserved != 4*GiB {
		t.Errorf("RAM in e820 %d + reserved %d != 4 GiB", ram, reserved)
	}
}

func TestBoundsChecked(t *testing.T) {
	m, err := New(16 * MiB)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.WriteUint32(16*MiB-4, 0xdeadbeef); err != nil {
		t.Fatalf("last word: %v", err)
	}
	if v, err := m.ReadUint32(16*MiB - 4); err != nil || v != 0xdeadbeef {
		t.Fatalf("read back %#x, %v", v, err)
	}
	for _, tc := range []struct {
		addr GuestAddress
		n    uint64
	}{
		{16*MiB - 3, 4},           // straddles the end
		{16 * MiB, 1},             // just past the end
		{^GuestAddress(0) - 1, 4}, // wraps around
		{0, ^uint64(0)},           // absurd length
		{3 * GiB, 1},              // in the device hole
	} {
		_, err := m.Slice(tc.addr, tc.n)
		var ae *AddressError
		if !errors.Is(err, ErrOutOfRange) || !errors.As(err, &ae) || ae.Addr != tc.addr {
			t.Errorf("Slice(%v, %#x) error = %v, want an AddressError for that address", tc.addr, tc.n, err)
		}
	}
}

func TestRejectsBadSizes(t *testing.T) {
	for _, size := range []uint64{0, 4097} {
		if m, err := New(size); err == nil {
			m.Close()
			t.Errorf("New(%d) succeeded", size)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"512M": 512 * MiB, "4G": 4 * GiB, "4GiB": 4 * GiB, "65536K": 64 * MiB, "1048576": MiB, "2g": 2 * GiB, " 1T ": 1 << 40,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "12X", "-1G", "1.5G", "99999999999T"} {
		if v, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, v)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512M", "4G", "1", "", "18446744073709551615", "17179869184G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err == nil && v > 0 && s == "" {
			t.Fatalf("empty string parsed as %d", v)
		}
	})
}

// A host that refuses huge pages for one region of RAM says so, whichever
// region it is, and the RAM still works.
func TestHugePagesRefused(t *testing.T) {
	refuse := errors.New("invalid argument")
	for _, tc := range []struct {
		name    string
		refused int // which call of advise fails; -1 for none
		want    string
	}{
		{"none", -1, ""},
		{"low", 0, "guest RAM at 0x0"},
		{"high", 1, "guest RAM at 0x100000000"},
	} {
		calls := 0
		m, err := newRAM(4*GiB, func([]byte) error {
			defer func() { calls++ }()
			if calls == tc.refused {
				return refuse
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got := m.HugePages()
		if tc.want == "" && got != nil || tc.want != "" && (!errors.Is(got, refuse) || !strings.Contains(got.Error(), tc.want)) {
			t.Errorf("%s refused: HugePages() = %v, want an error naming %q", tc.name, got, tc.want)
		}
		if err := m.WriteUint16(HighRAMStart, 1); err != nil {
			t.Errorf("%s refused: RAM unusable: %v", tc.name, err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A host whose transparent huge pages are off accepts madvise all the
// same: its mode file is what tells.
func TestTHPTurnedOff(t *testing.T) {
	dir := t.TempDir()
	for mode, off := range map[string]bool{"always [madvise] never\n": false, "[always] madvise never\n": false, "always madvise [never]\n": true} {
		path := filepath.Join(dir, "enabled")
		if err := os.WriteFile(path, []byte(mode), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := thpTurnedOff(path); (err != nil) != off || off && !strings.Contains(err.Error(), "turned off") {
			t.Errorf("mode %q: %v, want turned off %v", mode, err, off)
		}
	}
	if err := thpTurnedOff(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("no mode file: %v, want nothing said", err)
	}
}

// Guest RAM is kept out of govmm's core dumps: the kernel marks the
// mapping "dd" (MADV_DONTDUMP) in /proc/self/smaps.
func TestGuestRAMIsNotDumped(t *testing.T) {
	m, err := New(64 * MiB)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	host := uint64(m.Mappings()[0].Host)
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, line := range strings.Split(string(smaps), "\n") {
		var lo, hi uint64
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= host && host < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			if !strings.Contains(line+" ", " dd ") {
				t.Errorf("guest RAM's mapping has %q: no dd (MADV_DONTDUMP)", line)
			}
			return
		}
	}
	t.Fatalf("no mapping holds guest RAM at %#x in /proc/self/smaps", host)
}
