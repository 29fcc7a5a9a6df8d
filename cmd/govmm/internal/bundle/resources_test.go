package bundle

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestMemory(t *testing.T) {
	for _, c := range []struct {
		name  string
		limit *int64
		want  uint64
		line  string // in Unsupported
	}{
		{"unset", nil, 0, ""},
		{"unlimited", ptr(int64(-1)), 0, ""},
		{"a MiB multiple", ptr(int64(512 << 20)), 512 << 20, ""},
		{"rounded up", ptr(int64(100<<20 + 1)), 101 << 20, ""},
		{"the minimum", ptr(int64(64 << 20)), 64 << 20, ""},
		{"below the minimum", ptr(int64(6 << 20)), 64 << 20, "linux.resources.memory.limit: 6291456 bytes is below the guest's minimum: the VM gets 64 MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: c.limit}}
			b := f.mustLoad()
			if b.Memory != c.want {
				t.Errorf("Memory = %d, want %d", b.Memory, c.want)
			}
			checkLines(t, b.Unsupported, c.line)
		})
	}
}

func TestCPUs(t *testing.T) {
	for _, c := range []struct {
		name string
		cpu  specs.LinuxCPU
		want int
		line string
	}{
		{"none", specs.LinuxCPU{}, 0, ""},
		{"quota 1.5", specs.LinuxCPU{Quota: ptr(int64(150000)), Period: ptr(uint64(100000))}, 2, ""},
		{"quota exact", specs.LinuxCPU{Quota: ptr(int64(400000)), Period: ptr(uint64(100000))}, 4, ""},
		{"quota below one", specs.LinuxCPU{Quota: ptr(int64(10000)), Period: ptr(uint64(100000))}, 1, ""},
		{"quota, default period", specs.LinuxCPU{Quota: ptr(int64(250000))}, 3, ""},
		{"no quota", specs.LinuxCPU{Quota: ptr(int64(-1)), Period: ptr(uint64(100000))}, 0, ""},
		{"cpuset", specs.LinuxCPU{Cpus: "0-3,6"}, 5, `linux.resources.cpu.cpus "0-3,6": the VM gets as many vCPUs, not pinned to those host CPUs`},
		{"cpuset repeats", specs.LinuxCPU{Cpus: "0,0-1, 1"}, 2, `linux.resources.cpu.cpus "0,0-1, 1": the VM gets as many vCPUs, not pinned to those host CPUs`},
		{"quota wins", specs.LinuxCPU{Quota: ptr(int64(100000)), Cpus: "0-7"}, 1, `linux.resources.cpu.cpus "0-7": not applied: the quota sizes the VM and its vCPUs are not pinned`},
		{"shares", specs.LinuxCPU{Shares: ptr(uint64(512))}, 0, "linux.resources.cpu.shares: not applied: only the quota or the cpuset sizes the VM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.spec.Linux.Resources = &specs.LinuxResources{CPU: &c.cpu}
			b := f.mustLoad()
			if b.CPUs != c.want {
				t.Errorf("CPUs = %d, want %d", b.CPUs, c.want)
			}
			checkLines(t, b.Unsupported, c.line)
		})
	}
}

func TestCpusetCount(t *testing.T) {
	for s, want := range map[string]int{"0": 1, "0-3,6": 5, "1-1": 1, "0-1,4-5,8": 5, "2,3,2": 2} {
		if n, err := cpusetCount(s); err != nil || n != want {
			t.Errorf("cpusetCount(%q) = %d, %v; want %d", s, n, err, want)
		}
	}
	for _, s := range []string{"", "a", "3-1", "0-", "-1", "0,,1", "0-99999999"} {
		if n, err := cpusetCount(s); err == nil {
			t.Errorf("cpusetCount(%q) = %d, want an error", s, n)
		}
	}
}

// checkLines checks that Unsupported is exactly line (none when "").
func checkLines(t *testing.T, got []string, line string) {
	t.Helper()
	var want []string
	if line != "" {
		want = []string{line}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Unsupported =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
