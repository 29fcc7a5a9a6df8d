package bundle

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

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

// guestMounts are the mounts the guest can provide, in the spec's order,
// and the disks the VM needs for them: a mount of a host block device (or
// an image file) becomes a virtio disk that the guest mounts in its place.
func guestMounts(ms []specs.Mount) ([]agent.Mount, []Disk, error) {
	var out []agent.Mount
	var disks []Disk
	for _, m := range ms {
		src := m.Source
		switch {
		case guestMount(m):
		case diskMount(m):
			if len(disks) == maxDisks {
				return nil, nil, fmt.Errorf("mounts: %s: more than %d block device mounts", m.Destination, maxDisks)
			}
			disks = append(disks, Disk{Path: m.Source, ReadOnly: slices.Contains(m.Options, "ro")})
			src = diskDevice(len(disks))
		default:
			continue
		}
		out = append(out, agent.Mount{Destination: m.Destination, Type: m.Type, Source: src, Options: m.Options})
	}
	return out, disks, nil
}

// Disk is a host block device or image file that the VM gets as a virtio
// disk, after the root image, for one of the spec's mounts.
type Disk struct {
	Path     string
	ReadOnly bool
}

// maxDisks keeps the guest's names to /dev/vdb../dev/vdz.
const maxDisks = 'z' - 'b' + 1

// diskDevice is the guest's name of the n-th disk after the root image.
func diskDevice(n int) string { return "/dev/vd" + string(rune('a'+n)) }

// diskMount: a mount of a file system the guest's kernel reads from a
// device (ext4, xfs, ...) whose source is a host block device, as runc
// mounts it, or an image file.
func diskMount(m specs.Mount) bool {
	if isBind(m) || guestFS[m.Type] || m.Type == "" || !filepath.IsAbs(m.Source) ||
		len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		return false
	}
	fi, err := os.Stat(m.Source)
	if err != nil {
		return false
	}
	mode := fi.Mode()
	return mode.IsRegular() || mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0
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
