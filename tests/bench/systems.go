package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// system is one VMM configuration under test. qemuMachine is nil for govmm.
type system struct {
	name        string
	qemuMachine []string
	// pvh boots the bzImage's vmlinux, extracted once before the runs,
	// through the PVH entry: govmm takes the ELF file as it is, and so
	// does QEMU's -kernel.
	pvh bool
}

func (s system) isQEMU() bool { return s.qemuMachine != nil }

// selected keeps the systems -systems names (all when it is empty); govmm
// stays first.
func selected(c *config, systems []system) []system {
	if c.systems == "" {
		return systems
	}
	names := strings.Split(c.systems, ",")
	var out []system
	for _, s := range systems {
		if slices.Contains(names, s.name) {
			out = append(out, s)
		}
	}
	return out
}

func allSystems() []system {
	return []system{
		{name: "govmm"},
		// rtc=on: without an RTC the guest busy-polls CMOS (docs/facts.md).
		{name: "qemu microvm", qemuMachine: []string{"-M", "microvm,rtc=on", "-nodefaults", "-no-user-config"}},
		{name: "qemu pc -nodefaults", qemuMachine: []string{"-M", "pc", "-nodefaults", "-no-user-config"}},
		// What a user of plain -M pc gets: VGA, a NIC, option ROMs.
		{name: "qemu pc", qemuMachine: []string{"-M", "pc"}},
		{name: "govmm pvh", pvh: true},
		{name: "qemu microvm pvh", qemuMachine: []string{"-M", "microvm,rtc=on", "-nodefaults", "-no-user-config"}, pvh: true},
	}
}

// statsPath is where govmm writes its --stats file on SIGUSR1.
func statsPath(dir string) string { return filepath.Join(dir, "stats.json") }

// command is the program and arguments that boot the guest. qmpName is an
// abstract socket name: the sandbox's /tmp is 9p, where a unix socket file
// cannot be connected to.
func (s system) command(c *config, dir, qmpName, cmdline string) (string, []string) {
	kernel := c.kernel
	if s.pvh {
		kernel = c.vmlinux
	}
	if !s.isQEMU() {
		return c.govmm, []string{"run", "--kernel", kernel, "--initrd", c.initrd, "--memory", c.memory,
			"--cpus", strconv.Itoa(c.cpus), "--cmdline", cmdline, "--stats", statsPath(dir)}
	}
	args := []string{"-accel", "kvm", "-cpu", "host"}
	args = append(args, s.qemuMachine...)
	args = append(args,
		"-m", fmt.Sprintf("%dM", c.memBytes>>20), "-smp", strconv.Itoa(c.cpus),
		"-display", "none", "-serial", "stdio",
		"-kernel", kernel, "-initrd", c.initrd, "-append", cmdline,
		// -no-shutdown keeps QEMU up after poweroff; bench sends quit.
		"-no-reboot", "-no-shutdown",
		"-qmp", "unix:"+qmpName+",server=on,wait=off,abstract=on")
	return c.qemu, args
}
