// Command init is PID 1 of govmm's test and demo initramfs. It reports what
// the guest sees (report.Report) first thing, runs the checks named by
// govmm.check= on the kernel command line, then ends the guest as
// govmm.exit= says: poweroff (default), reboot, panic, shell or hang.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/report"
)

func main() {
	mountAll()
	cmdline := readTrimmed("/proc/cmdline")
	params := parseCmdline(cmdline)
	fmt.Println(gather(cmdline).Line())
	for _, name := range splitList(params["govmm.check"]) {
		fmt.Println(runCheck(name).Line())
	}
	if ms, ok := params["govmm.hold"]; ok {
		var n int
		if _, err := fmt.Sscan(ms, &n); err == nil {
			time.Sleep(time.Duration(n) * time.Millisecond)
		}
	}
	action := params["govmm.exit"]
	if action == "" {
		action = "poweroff"
	}
	fmt.Println(report.DonePrefix + action)
	finish(action)
}

// mountAll mounts what the reports and checks read. Failures are reported
// and tolerated: a missing /sys only makes some checks fail.
func mountAll() {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			fmt.Println(report.Check{Name: "init", Detail: err.Error()}.Line())
		}
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			fmt.Println(report.Check{Name: "init", Detail: fmt.Sprintf("mount %s: %v", m.dir, err)}.Line())
		}
	}
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseCmdline returns key=value parameters; quotes group words as the
// kernel's own parser does.
func parseCmdline(s string) map[string]string {
	out := map[string]string{}
	var word strings.Builder
	quoted := false
	flush := func() {
		if k, v, ok := strings.Cut(word.String(), "="); ok {
			out[k] = v
		}
		word.Reset()
	}
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			flush()
		default:
			word.WriteRune(r)
		}
	}
	flush()
	return out
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}
