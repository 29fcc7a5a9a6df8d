// Package report is the contract between the guest's init and the host's
// tests: machine-readable lines the guest prints on its console. It is
// shared by both sides and depends on the standard library only.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Line prefixes. ReportPrefix marks the init's first line: benchmarks take it
// as "the guest reached init".
const (
	ReportPrefix = "GOVMM-REPORT "
	CheckPrefix  = "GOVMM-CHECK "
	DonePrefix   = "GOVMM-DONE "
)

// Report is what the guest sees of itself when init starts.
type Report struct {
	CPUs          int     `json:"cpus"`           // online CPUs
	MemTotalKB    uint64  `json:"mem_total_kb"`   // MemTotal of /proc/meminfo
	Cmdline       string  `json:"cmdline"`        // /proc/cmdline
	UptimeS       float64 `json:"uptime_s"`       // /proc/uptime at init
	Kernel        string  `json:"kernel"`         // uname release
	PayloadSHA256 string  `json:"payload_sha256"` // sha256 of /payload.bin
	EntropyAvail  int     `json:"entropy_avail"`  // bits in the kernel's pool
	TimeUnix      int64   `json:"time_unix"`      // guest wall clock at init (set from the RTC)
	RootDev       string  `json:"root_dev"`       // what / is mounted from: "rootfs" for the initramfs, "/dev/vda"
	RootFS        string  `json:"root_fs"`        // the type of /: "rootfs" for the initramfs, "ext4"
	Clocksource   string  `json:"clocksource"`    // what keeps time: "kvm-clock"
	ClockEvents   string  `json:"clockevents"`    // CPU 0's timer: "lapic-deadline" (TSC-deadline mode) or "lapic"
}

// Line is the report as one console line.
func (r Report) Line() string {
	b, err := json.Marshal(r)
	if err != nil {
		// A struct of plain fields always marshals.
		panic(err)
	}
	return ReportPrefix + string(b)
}

// Parse reads a report line; kernel log noise before the prefix is ignored.
func Parse(line string) (Report, bool) {
	i := strings.Index(line, ReportPrefix)
	if i < 0 {
		return Report{}, false
	}
	var r Report
	if err := json.Unmarshal([]byte(strings.TrimSpace(line[i+len(ReportPrefix):])), &r); err != nil {
		return Report{}, false
	}
	return r, true
}

// Check is the result of one named check the guest ran.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Line is the check as one console line.
func (c Check) Line() string {
	verdict := "FAIL"
	if c.OK {
		verdict = "PASS"
	}
	detail := strings.Join(strings.Fields(c.Detail), " ")
	return fmt.Sprintf("%s%s %s %s", CheckPrefix, c.Name, verdict, detail)
}

// ParseCheck reads a check line.
func ParseCheck(line string) (Check, bool) {
	i := strings.Index(line, CheckPrefix)
	if i < 0 {
		return Check{}, false
	}
	f := strings.SplitN(strings.TrimSpace(line[i+len(CheckPrefix):]), " ", 3)
	if len(f) < 2 || (f[1] != "PASS" && f[1] != "FAIL") || f[0] == "" {
		return Check{}, false
	}
	c := Check{Name: f[0], OK: f[1] == "PASS"}
	if len(f) == 3 {
		c.Detail = f[2]
	}
	return c, true
}

// Console is everything the guest reported in one boot.
type Console struct {
	Report *Report
	Checks []Check
	Done   string // the exit action the guest announced last
}

// Check returns the named check, if the guest ran it.
func (c Console) Check(name string) (Check, bool) {
	for _, ch := range c.Checks {
		if ch.Name == name {
			return ch, true
		}
	}
	return Check{}, false
}

// Scan collects the guest's lines from console output.
func Scan(r io.Reader) Console {
	var c Console
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if rep, ok := Parse(line); ok && c.Report == nil {
			c.Report = &rep
		} else if ch, ok := ParseCheck(line); ok {
			c.Checks = append(c.Checks, ch)
		} else if i := strings.Index(line, DonePrefix); i >= 0 {
			c.Done = strings.TrimSpace(line[i+len(DonePrefix):])
		}
	}
	return c
}
