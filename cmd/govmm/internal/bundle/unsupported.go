package bundle

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// unsupported lists what spec asks that a microVM does not do, one line
// each. What the VM honours by being a VM is not listed: pid, ipc, uts,
// mount and cgroup namespaces without a path, linux.rootfsPropagation
// (there is no host mount to propagate to or from).
func unsupported(spec *specs.Spec) []string {
	var l lines
	l.processFields(spec.Process)
	if spec.Domainname != "" {
		l.add("domainname %q: not set: the guest gets the hostname only", spec.Domainname)
	}
	for _, m := range spec.Mounts {
		l.mount(m)
	}
	l.hooks(spec.Hooks)
	l.linux(spec.Linux)
	l.namespaces(spec.Linux)
	for _, p := range []struct {
		name string
		set  bool
	}{
		{"solaris", spec.Solaris != nil}, {"windows", spec.Windows != nil}, {"vm", spec.VM != nil},
		{"zos", spec.ZOS != nil}, {"freebsd", spec.FreeBSD != nil},
	} {
		l.when(p.set, p.name, "ignored: govmm runs the process in its own Linux guest")
	}
	return l
}

type lines []string

func (l *lines) add(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }

// when adds "FIELD: WHY" when set.
func (l *lines) when(set bool, field, why string) {
	if set {
		l.add("%s: %s", field, why)
	}
}

func (l *lines) processFields(p *specs.Process) {
	l.when(p.Capabilities != nil, "process.capabilities", "not applied: the process has its uid's capabilities in the guest, all of them for uid 0")
	l.when(p.ApparmorProfile != "", "process.apparmorProfile", "not applied: the guest loads no AppArmor policy")
	l.when(p.SelinuxLabel != "", "process.selinuxLabel", "not applied: the guest loads no SELinux policy")
	l.when(p.OOMScoreAdj != nil, "process.oomScoreAdj", "not applied")
	l.when(p.Scheduler != nil, "process.scheduler", "not applied")
	l.when(p.IOPriority != nil, "process.ioPriority", "not applied")
	l.when(p.ExecCPUAffinity != nil, "process.execCPUAffinity", "not applied: vCPUs are not pinned to host CPUs")
}

func (l *lines) mount(m specs.Mount) {
	switch {
	case isBind(m):
		l.add("mounts: %s: bind mount of the host's %s not made: the guest cannot see the host's files", m.Destination, m.Source)
	case diskMount(m):
	case !guestFS[m.Type]:
		l.add("mounts: %s: type %q not mounted: the guest makes only proc, sysfs, tmpfs, devtmpfs, devpts, mqueue and cgroup file systems, and mounts what a host block device or image file holds", m.Destination, m.Type)
	case len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0:
		l.add("mounts: %s: not mounted: id-mapped mounts are not supported", m.Destination)
	}
}

func (l *lines) hooks(h *specs.Hooks) {
	if h == nil {
		return
	}
	var kinds []string
	for name, hs := range map[string][]specs.Hook{
		"prestart": h.Prestart, "createRuntime": h.CreateRuntime, "createContainer": h.CreateContainer,
		"startContainer": h.StartContainer, "poststart": h.Poststart, "poststop": h.Poststop,
	} {
		if len(hs) > 0 {
			kinds = append(kinds, name)
		}
	}
	slices.Sort(kinds)
	l.when(len(kinds) > 0, "hooks", "not run ("+strings.Join(kinds, ", ")+")")
}

func (l *lines) linux(x *specs.Linux) {
	if x == nil {
		return
	}
	l.when(len(x.UIDMappings) > 0, "linux.uidMappings", "not applied: the process runs as its uid in the guest, unmapped")
	l.when(len(x.GIDMappings) > 0, "linux.gidMappings", "not applied: the process runs as its gid in the guest, unmapped")
	if len(x.Sysctl) > 0 {
		keys := make([]string, 0, len(x.Sysctl))
		for k := range x.Sysctl {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		l.add("linux.sysctl: not set: %s", strings.Join(keys, ", "))
	}
	l.when(x.CgroupsPath != "", "linux.cgroupsPath", "not used: the VM is not put in a host cgroup")
	if len(x.Devices) > 0 {
		paths := make([]string, len(x.Devices))
		for i, d := range x.Devices {
			paths[i] = d.Path
		}
		l.add("linux.devices: not created (%s): the guest has only its own devices", strings.Join(paths, ", "))
	}
	l.when(len(x.NetDevices) > 0, "linux.netDevices", "not moved: the guest has only its own network devices")
	l.when(x.Seccomp != nil, "linux.seccomp", "not applied: the guest kernel is the boundary")
	l.when(len(x.MaskedPaths) > 0, "linux.maskedPaths", fmt.Sprintf("not applied (%d paths): they are the guest's, not the host's", len(x.MaskedPaths)))
	l.when(len(x.ReadonlyPaths) > 0, "linux.readonlyPaths", fmt.Sprintf("not applied (%d paths): they are the guest's, not the host's", len(x.ReadonlyPaths)))
	l.when(x.MountLabel != "", "linux.mountLabel", "not applied: the guest loads no SELinux policy")
	l.when(x.IntelRdt != nil, "linux.intelRdt", "not applied")
	l.when(x.MemoryPolicy != nil, "linux.memoryPolicy", "not applied")
	l.when(x.Personality != nil, "linux.personality", "not applied")
	l.when(len(x.TimeOffsets) > 0, "linux.timeOffsets", "not applied: the guest's clocks are its own")
}

// namespaces reports the namespaces a VM cannot give as asked: one to
// join (a path names a host process's), and the host's network, which a
// spec asks for by listing no network namespace.
func (l *lines) namespaces(x *specs.Linux) {
	network := false
	if x != nil {
		for _, ns := range x.Namespaces {
			network = network || ns.Type == specs.NetworkNamespace
			if ns.Path != "" {
				l.add("linux.namespaces: %s namespace %s not joined: the VM has its own", ns.Type, ns.Path)
			}
		}
	}
	l.when(!network, "linux.namespaces", "no network namespace asks for the host's network: the guest has only its own")
}

// unsupportedResources reports linux.resources other than the memory
// limit and the CPU quota or cpuset, which size the VM.
//
// A devices list that starts by denying everything (runc's and Docker's
// default, followed by the usual /dev nodes) is accepted without a word:
// the guest holds none of the host's devices, so there is nothing to deny
// and its own /dev has the usual nodes. Any other list asks for host
// devices and is reported.
func unsupportedResources(r *specs.LinuxResources) []string {
	var l lines
	if len(r.Devices) > 0 && !denyAll(r.Devices[0]) {
		l.add("linux.resources.devices: not applied: the guest has only its own devices")
	}
	if m := r.Memory; m != nil {
		for name, set := range map[string]bool{
			"reservation": m.Reservation != nil, "swap": m.Swap != nil, "kernel": m.Kernel != nil,
			"kernelTCP": m.KernelTCP != nil, "swappiness": m.Swappiness != nil,
			"disableOOMKiller": m.DisableOOMKiller != nil,
		} {
			l.when(set, "linux.resources.memory."+name, "not applied: only the limit sizes the VM")
		}
	}
	l.cpu(r.CPU)
	l.when(r.Pids != nil, "linux.resources.pids", "not applied")
	l.when(r.BlockIO != nil, "linux.resources.blockIO", "not applied")
	l.when(len(r.HugepageLimits) > 0, "linux.resources.hugepageLimits", "not applied")
	l.when(r.Network != nil, "linux.resources.network", "not applied")
	l.when(len(r.Rdma) > 0, "linux.resources.rdma", "not applied")
	l.when(len(r.Unified) > 0, "linux.resources.unified", "not applied")
	slices.Sort(l)
	return l
}

func (l *lines) cpu(c *specs.LinuxCPU) {
	if c == nil {
		return
	}
	quota := c.Quota != nil && *c.Quota > 0
	switch {
	case c.Cpus != "" && quota:
		l.add("linux.resources.cpu.cpus %q: not applied: the quota sizes the VM and its vCPUs are not pinned", c.Cpus)
	case c.Cpus != "":
		l.add("linux.resources.cpu.cpus %q: the VM gets as many vCPUs, not pinned to those host CPUs", c.Cpus)
	}
	for name, set := range map[string]bool{
		"shares": c.Shares != nil, "burst": c.Burst != nil, "realtimeRuntime": c.RealtimeRuntime != nil,
		"realtimePeriod": c.RealtimePeriod != nil, "mems": c.Mems != "", "idle": c.Idle != nil,
	} {
		l.when(set, "linux.resources.cpu."+name, "not applied: only the quota or the cpuset sizes the VM")
	}
}

// denyAll is the rule {"allow": false, "access": "rwm"} for every device.
func denyAll(r specs.LinuxDeviceCgroup) bool {
	return !r.Allow && (r.Type == "" || r.Type == "a") && r.Major == nil && r.Minor == nil &&
		(r.Access == "" || r.Access == "rwm")
}
