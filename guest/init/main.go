// Command init is PID 1 of govmm's test and demo initramfs and of its ext4
// root file system image. It reports what the guest sees (report.Report)
// first thing, loads the image's virtio modules and reports that as the
// "modules" check, runs the checks named by govmm.check= on the kernel
// command line (see parseCheck), then ends the guest as govmm.exit= says:
// poweroff (default), reboot, panic, shell, hang, or flood (print to the
// console without pause, for ever).
//
// With govmm.agent= on the command line it runs a container's process
// instead (govmm run --bundle; container.go).
//
// Started from the initramfs with root= on the command line, it first loads
// the modules, mounts that device and runs the init found there (root.go).
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/agent"
	"github.com/govmm/govmm/guest/report"
)

func main() {
	mountAll()
	cmdline := readTrimmed("/proc/cmdline")
	params := parseCmdline(cmdline)
	if ports, ok := params[agent.Param]; ok {
		runAgent(ports) // govmm run --bundle: one container's process
	}
	if dev, ok := rootRequest(params); ok {
		loadModules(nil) // the root's init reports them
		fmt.Println(switchRoot(dev, params).Line())
	}
	// The report line comes before the modules load: benchmarks take it as
	// "the guest reached init".
	fmt.Println(gather(cmdline).Line())
	fmt.Println(runCheck("modules").Line())
	reopenConsole()
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

// reopenConsole points stdin, stdout and stderr at /dev/console again once
// the modules are in: with console=hvc0 the console moves to the virtio
// console when its module registers it, after init has started on ttyS0.
func reopenConsole() {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return // keep the console init started with
	}
	for _, std := range []int{0, 1, 2} {
		unix.Dup2(fd, std)
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

// mountAll mounts what the reports and checks read, unless the initramfs's
// init already did and moved the mounts into this root. Failures are
// reported and tolerated: a missing /sys only makes some checks fail.
func mountAll() {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/tmp", "tmpfs"},
	} {
		if isMountPoint(m.dir) {
			continue
		}
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			fmt.Println(report.Check{Name: "init", Detail: err.Error()}.Line())
		}
		if err := unix.Mount(m.src, m.dir, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			fmt.Println(report.Check{Name: "init", Detail: fmt.Sprintf("mount %s: %v", m.dir, err)}.Line())
		}
	}
}

// isMountPoint tells whether dir is on another file system than /.
func isMountPoint(dir string) bool {
	var root, st unix.Stat_t
	return unix.Stat("/", &root) == nil && unix.Stat(dir, &st) == nil && st.Dev != root.Dev
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// parseCmdline returns key=value parameters, and words without a value
// (quiet, rw) with an empty value; quotes group words as the kernel's own
// parser does.
func parseCmdline(s string) map[string]string {
	out := map[string]string{}
	var word strings.Builder
	quoted := false
	flush := func() {
		if k, v, _ := strings.Cut(word.String(), "="); k != "" {
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
