package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mapping is one entry of /proc/PID/smaps, sizes in bytes.
type mapping struct {
	size, rss uint64
	anonymous bool // no file behind it, and not [heap], [stack], [vdso]...
}

// parseSmaps reads the Size and Rss of every mapping in an smaps file.
func parseSmaps(r io.Reader) ([]mapping, error) {
	var maps []mapping
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			// A header: address perms offset dev inode [path].
			anon := len(f) >= 5 && f[4] == "0" && (len(f) == 5 || strings.HasPrefix(f[5], "[anon:"))
			maps = append(maps, mapping{anonymous: anon})
			continue
		}
		if len(maps) == 0 || len(f) != 3 || f[2] != "kB" || (f[0] != "Size:" && f[0] != "Rss:") {
			continue
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("smaps: %q: %w", sc.Text(), err)
		}
		if m := &maps[len(maps)-1]; f[0] == "Size:" {
			m.size = kb << 10
		} else {
			m.rss = kb << 10
		}
	}
	return maps, sc.Err()
}

// rssSplit returns the resident memory of all mappings and of those that
// hold guest RAM: anonymous mappings at least as large as the guest's RAM
// (both VMMs map it as one region, govmm's a little larger for alignment).
func rssSplit(maps []mapping, guestBytes uint64) (total, guest uint64) {
	for _, m := range maps {
		total += m.rss
		if m.anonymous && m.size >= guestBytes {
			guest += m.rss
		}
	}
	return total, guest
}

func readRSS(pid int, guestBytes uint64) (total, guest uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		return 0, 0, err
	}
	total, guest = rssSplit(maps, guestBytes)
	if guest == 0 {
		return 0, 0, fmt.Errorf("no anonymous mapping of %d MiB or more in /proc/%d/smaps: where is guest RAM?", guestBytes>>20, pid)
	}
	return total, guest, nil
}

// cpuTime is the user plus system time of an exited child.
func cpuTime(ps *os.ProcessState) time.Duration {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
