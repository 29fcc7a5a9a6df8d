package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

// gather reads what the report says about the guest.
func gather(cmdline string) report.Report {
	r := report.Report{Cmdline: cmdline, CPUs: countCPUs(readTrimmed("/sys/devices/system/cpu/online"))}
	if up := strings.Fields(readTrimmed("/proc/uptime")); len(up) > 0 {
		r.UptimeS, _ = strconv.ParseFloat(up[0], 64) //nolint:errcheck // 0 is an honest "unknown"
	}
	r.MemTotalKB = memTotalKB(readTrimmed("/proc/meminfo"))
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		r.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	r.PayloadSHA256 = fileSHA256("/payload.bin")
	r.TimeUnix = time.Now().Unix()
	r.RootDev, r.RootFS = rootMount(readTrimmed("/proc/self/mounts"))
	r.Clocksource = readTrimmed("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	r.ClockEvents = readTrimmed("/sys/devices/system/clockevents/clockevent0/current_device")
	r.EntropyAvail, _ = strconv.Atoi(readTrimmed("/proc/sys/kernel/random/entropy_avail")) //nolint:errcheck // 0 if absent
	return r
}

// countCPUs counts a CPU list such as "0-3,5".
func countCPUs(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		var lo, hi int
		if c, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); c == 2 && hi >= lo {
			n += hi - lo + 1
		} else if c == 1 {
			n++
		}
	}
	return n
}

// rootMount returns the device and type of the mount on / that is in
// effect: the last one listed.
func rootMount(mounts string) (dev, fstype string) {
	for _, line := range strings.Split(mounts, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "/" {
			dev, fstype = f[0], f[2]
		}
	}
	return dev, fstype
}

func memTotalKB(meminfo string) uint64 {
	for _, line := range strings.Split(meminfo, "\n") {
		var kb uint64
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return kb
		}
	}
	return 0
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}
