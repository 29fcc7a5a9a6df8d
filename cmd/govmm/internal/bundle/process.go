package bundle

import (
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/govmm/govmm/guest/agent"
)

// process is what the guest runs: the parts of the spec a microVM
// honours. checkProcess has checked spec.Process.
func process(spec *specs.Spec) agent.Process {
	p := spec.Process
	a := agent.Process{
		Args:            p.Args,
		Env:             p.Env,
		Cwd:             p.Cwd,
		UID:             p.User.UID,
		GID:             p.User.GID,
		AdditionalGids:  p.User.AdditionalGids,
		Umask:           p.User.Umask,
		Hostname:        spec.Hostname,
		Terminal:        p.Terminal,
		NoNewPrivileges: p.NoNewPrivileges,
		RootDevice:      RootDevice,
		ReadOnly:        spec.Root.Readonly,
		Mounts:          guestMounts(spec.Mounts),
	}
	for _, r := range p.Rlimits {
		a.Rlimits = append(a.Rlimits, agent.Rlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
	}
	if c := p.ConsoleSize; c != nil {
		a.ConsoleSize = &agent.Size{Rows: clamp16(c.Height), Cols: clamp16(c.Width)}
	}
	return a
}

func clamp16(v uint) uint16 { return uint16(min(v, math.MaxUint16)) }

// guestFS are the file system types a guest kernel makes itself; any
// other mount needs something of the host's.
var guestFS = map[string]bool{
	"proc": true, "sysfs": true, "tmpfs": true, "devtmpfs": true,
	"devpts": true, "mqueue": true, "cgroup": true, "cgroup2": true,
}

// guestMounts are the mounts the guest can provide, in the spec's order.
func guestMounts(ms []specs.Mount) []agent.Mount {
	var out []agent.Mount
	for _, m := range ms {
		if !guestMount(m) {
			continue
		}
		out = append(out, agent.Mount{Destination: m.Destination, Type: m.Type, Source: m.Source, Options: m.Options})
	}
	return out
}

func guestMount(m specs.Mount) bool {
	return guestFS[m.Type] && !isBind(m) && len(m.UIDMappings) == 0 && len(m.GIDMappings) == 0
}

// isBind: runc treats a mount as a bind mount when its options ask for
// one, whatever its type says.
func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}
