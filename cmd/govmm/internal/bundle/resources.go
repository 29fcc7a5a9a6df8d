package bundle

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const mib = 1 << 20

// MinMemory is the least guest RAM govmm gives a bundle: the guest kernel
// and init need about this much before the process has any.
const MinMemory = 64 * mib

// defaultPeriod is the CFS period a quota without one is counted in, the
// kernel's default (cpu.cfs_period_us).
const defaultPeriod = 100000

// resources reads the guest's size from linux.resources and says what of
// linux.resources it cannot honour.
func resources(l *specs.Linux) (memory uint64, cpus int, lines []string, err error) {
	if l == nil || l.Resources == nil {
		return 0, 0, nil, nil
	}
	r := l.Resources
	memory, lines = memoryLimit(r.Memory)
	cpus, err = cpuCount(r.CPU)
	if err != nil {
		return 0, 0, nil, err
	}
	return memory, cpus, append(lines, unsupportedResources(r)...), nil
}

// memoryLimit is the guest's RAM: the container's limit rounded up to a
// MiB, at least MinMemory. A limit of -1 (or 0) is no limit.
func memoryLimit(m *specs.LinuxMemory) (uint64, []string) {
	if m == nil || m.Limit == nil || *m.Limit <= 0 {
		return 0, nil
	}
	v := (uint64(*m.Limit) + mib - 1) / mib * mib
	if v < MinMemory {
		return MinMemory, []string{fmt.Sprintf("linux.resources.memory.limit: %d bytes is below the guest's minimum: the VM gets %d MiB", *m.Limit, MinMemory/mib)}
	}
	return v, nil
}

// cpuCount is the guest's vCPUs: as many as the CFS quota lets run at
// once, rounded up, else as many as the cpuset names; 0 when neither is
// set.
func cpuCount(c *specs.LinuxCPU) (int, error) {
	if c == nil {
		return 0, nil
	}
	if c.Quota != nil && *c.Quota > 0 {
		period := uint64(defaultPeriod)
		if c.Period != nil && *c.Period > 0 {
			period = *c.Period
		}
		return int((uint64(*c.Quota) + period - 1) / period), nil
	}
	if c.Cpus == "" {
		return 0, nil
	}
	n, err := cpusetCount(c.Cpus)
	if err != nil {
		return 0, fmt.Errorf("linux.resources.cpu.cpus %q: %w: write a cpuset list such as \"0-3,6\"", c.Cpus, err)
	}
	return n, nil
}

// cpusetCount counts the CPUs of a cpuset list (cpuset(7)'s "List
// format"): "0-3,6" is 5. A CPU named twice counts once.
func cpusetCount(s string) (int, error) {
	seen := map[uint64]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, err := cpuRange(strings.TrimSpace(part))
		if err != nil {
			return 0, err
		}
		if hi-lo >= 1<<16 {
			return 0, fmt.Errorf("range %q is larger than any machine", part)
		}
		for c := lo; c <= hi; c++ {
			seen[c] = true
		}
	}
	return len(seen), nil
}

func cpuRange(part string) (lo, hi uint64, err error) {
	a, b, isRange := strings.Cut(part, "-")
	if lo, err = strconv.ParseUint(a, 10, 32); err != nil {
		return 0, 0, fmt.Errorf("%q is not a CPU number", a)
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = strconv.ParseUint(b, 10, 32); err != nil {
		return 0, 0, fmt.Errorf("%q is not a CPU number", b)
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %q ends before it starts", part)
	}
	return lo, hi, nil
}
