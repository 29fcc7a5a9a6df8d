package compare

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// This file reads what the kernel says about processes and cgroups. The
// parsers take readers so tests feed them fixtures; the thin wrappers open
// the real files.

// parseKB reads the kB value of a "Name:   1234 kB" line.
func parseKB(fields []string) (int64, error) {
	if len(fields) < 2 {
		return 0, fmt.Errorf("short line %q", strings.Join(fields, " "))
	}
	v, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return v * 1024, nil
}

// ParseSmapsRollup returns the Pss and Rss, in bytes, of a
// /proc/PID/smaps_rollup.
func ParseSmapsRollup(r io.Reader) (pss, rss int64, err error) {
	sc := bufio.NewScanner(r)
	seen := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "Pss:":
			if pss, err = parseKB(f); err != nil {
				return 0, 0, err
			}
			seen = true
		case "Rss:":
			if rss, err = parseKB(f); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !seen {
		return 0, 0, fmt.Errorf("no Pss line")
	}
	return pss, rss, nil
}

// Mapping is one region of /proc/PID/smaps.
type Mapping struct {
	Start, End uint64
	Perms      string // e.g. rw-p
	Path       string // empty for anonymous memory
	Rss        int64
}

// Anonymous: no file behind it (the kernel names some anonymous regions
// [heap], [stack]; those are not guest RAM either, which is mmap'ed).
func (m Mapping) Anonymous() bool { return m.Path == "" }

// ParseSmaps returns the mappings of a /proc/PID/smaps.
func ParseSmaps(r io.Reader) ([]Mapping, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var maps []Mapping
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if isMapHeader(f) {
			lo, hi, _ := strings.Cut(f[0], "-")
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("bad mapping line %q", line)
			}
			m := Mapping{Start: start, End: end, Perms: f[1]}
			if len(f) >= 6 {
				m.Path = strings.Join(f[5:], " ")
			}
			maps = append(maps, m)
			continue
		}
		if f[0] == "Rss:" && len(maps) > 0 {
			v, err := parseKB(f)
			if err != nil {
				return nil, err
			}
			maps[len(maps)-1].Rss = v
		}
	}
	return maps, sc.Err()
}

// isMapHeader: "start-end perms offset dev inode [path]", where a field line
// is "Name: value [kB]".
func isMapHeader(f []string) bool {
	if len(f) < 5 || strings.HasSuffix(f[0], ":") {
		return false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	return ok && lo != "" && hi != "" && len(f[1]) == 4
}

// VMMOverhead is the memory a VMM holds outside guest RAM: its Rss minus the
// Rss of the guest RAM mapping, taken to be the largest writable anonymous
// mapping (govmm and QEMU mmap guest RAM as one anonymous region, far
// larger than any heap arena of their own). Writable: the Go runtime
// reserves larger ranges of address space, inaccessible (---p) until used.
func VMMOverhead(maps []Mapping) (overhead, guest int64, err error) {
	var total int64
	var ram *Mapping
	for i := range maps {
		m := &maps[i]
		total += m.Rss
		if m.Anonymous() && strings.HasPrefix(m.Perms, "rw") && (ram == nil || m.End-m.Start > ram.End-ram.Start) {
			ram = m
		}
	}
	if ram == nil {
		return 0, 0, fmt.Errorf("no anonymous mapping: not a VMM?")
	}
	return total - ram.Rss, ram.Rss, nil
}

// CgroupPaths maps each controller of a /proc/PID/cgroup to the process's
// cgroup path. The cgroup v2 line ("0::/path") is under the key "".
// Named v1 hierarchies ("name=systemd") keep their name as the key.
func CgroupPaths(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("bad cgroup line %q", line)
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty cgroup file")
	}
	return out, nil
}

// Cgroup locates one process's cgroup in the mounted hierarchies: the v1
// memory and cpuacct controllers when they are mounted (a hybrid host
// such as this one puts the controllers there), else the v2 unified tree.
type Cgroup struct {
	MemDir string // holds cgroup.procs and the memory counter
	CPUDir string
	V2     bool
}

// ResolveCgroup finds the directories under root (/sys/fs/cgroup) for the
// paths of a /proc/PID/cgroup.
func ResolveCgroup(root string, paths map[string]string) (Cgroup, error) {
	mem, okMem := paths["memory"]
	cpu, okCPU := paths["cpuacct"]
	if okMem && okCPU && exists(filepath.Join(root, "memory")) && exists(filepath.Join(root, "cpuacct")) {
		return Cgroup{
			MemDir: filepath.Join(root, "memory", mem),
			CPUDir: filepath.Join(root, "cpuacct", cpu),
		}, nil
	}
	p, ok := paths[""]
	if !ok {
		return Cgroup{}, fmt.Errorf("no cgroup v2 path and no v1 memory+cpuacct controllers")
	}
	base := root
	if !exists(filepath.Join(root, "cgroup.controllers")) {
		base = filepath.Join(root, "unified")
	}
	d := filepath.Join(base, p)
	return Cgroup{MemDir: d, CPUDir: d, V2: true}, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Memory is the cgroup's charged memory in bytes (v2 memory.current, v1
// memory.usage_in_bytes).
func (c Cgroup) Memory() (int64, error) {
	name := "memory.usage_in_bytes"
	if c.V2 {
		name = "memory.current"
	}
	return readInt(filepath.Join(c.MemDir, name))
}

// CPUSeconds is the CPU time the cgroup's processes used (v2 cpu.stat
// usage_usec, v1 cpuacct.usage in nanoseconds).
func (c Cgroup) CPUSeconds() (float64, error) {
	if !c.V2 {
		ns, err := readInt(filepath.Join(c.CPUDir, "cpuacct.usage"))
		return float64(ns) / 1e9, err
	}
	f, err := os.Open(filepath.Join(c.CPUDir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return ParseCPUStatUsage(f)
}

// ParseCPUStatUsage returns usage_usec of a cgroup v2 cpu.stat, in seconds.
func ParseCPUStatUsage(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "usage_usec" {
			v, err := strconv.ParseInt(f[1], 10, 64)
			return float64(v) / 1e6, err
		}
	}
	return 0, fmt.Errorf("no usage_usec in cpu.stat")
}

// Procs lists the processes in the cgroup.
func (c Cgroup) Procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.MemDir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, s := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(s)
		if err != nil {
			return nil, err
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// ParseMemAvailable returns MemAvailable of /proc/meminfo in bytes.
func ParseMemAvailable(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			return parseKB(f)
		}
	}
	return 0, fmt.Errorf("no MemAvailable in meminfo")
}

// ParseStatCPU returns utime+stime of a /proc/PID/stat in clock ticks. The
// command name (field 2) may hold spaces and parentheses: fields are counted
// after its last ')'.
func ParseStatCPU(b []byte) (int64, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat %q", s)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad stat times in %q", s)
	}
	return u + st, nil
}

// processPSS is the Pss of one live process, in bytes.
func processPSS(pid int) (pss, rss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return ParseSmapsRollup(f)
}

func processCgroup(pid int) (Cgroup, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return Cgroup{}, err
	}
	defer f.Close()
	paths, err := CgroupPaths(f)
	if err != nil {
		return Cgroup{}, err
	}
	return ResolveCgroup("/sys/fs/cgroup", paths)
}

func processOverhead(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	maps, err := ParseSmaps(f)
	if err != nil {
		return 0, err
	}
	o, _, err := VMMOverhead(maps)
	return o, err
}

// clockTicks is USER_HZ, 100 on every Linux architecture govmm runs on.
const clockTicks = 100

func processCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	t, err := ParseStatCPU(b)
	return float64(t) / clockTicks, err
}

func memAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return ParseMemAvailable(f)
}
