package bundle

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/govmm/govmm/guest/agent"
)

func TestProcessMapping(t *testing.T) {
	f := newFixture(t)
	f.spec.Hostname = "box"
	f.spec.Root.Readonly = true
	p := f.spec.Process
	p.Env = []string{"PATH=/bin", "HOME=/root"}
	p.Cwd = "/tmp"
	p.User = specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{0, 65534}, Umask: ptr(uint32(0o027))}
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 1024}}
	p.Terminal = true
	p.ConsoleSize = &specs.Box{Height: 40, Width: 1 << 20}
	p.NoNewPrivileges = true
	f.spec.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=755"}},
		{Destination: "/etc/hosts", Type: "none", Source: "/etc/hosts", Options: []string{"bind", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup"},
		{Destination: "/mnt", Type: "nfs", Source: "server:/x"},
	}
	got := f.mustLoad().Process
	want := agent.Process{
		Args: []string{"sh", "-c", "true"}, Env: []string{"PATH=/bin", "HOME=/root"}, Cwd: "/tmp",
		UID: 65534, GID: 65534, AdditionalGids: []uint32{0, 65534}, Umask: ptr(uint32(0o027)),
		Hostname: "box",
		Rlimits:  []agent.Rlimit{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 1024}},
		Terminal: true, ConsoleSize: &agent.Size{Rows: 40, Cols: 65535}, NoNewPrivileges: true,
		RootDevice: "/dev/vda", ReadOnly: true,
		Mounts: []agent.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=755"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Process =\n%+v\nwant\n%+v", got, want)
	}
}
