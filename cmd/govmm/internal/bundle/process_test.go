package bundle

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

// A mount of a host block device or image file becomes a disk after the
// root image, mounted by the guest from its /dev/vdX; one that names no
// such file stays unsupported and is listed.
func TestDiskMounts(t *testing.T) {
	f := newFixture(t)
	img := filepath.Join(t.TempDir(), "scratch.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	block := ""
	if loops, _ := filepath.Glob("/dev/loop[0-9]*"); len(loops) > 0 {
		block = loops[0]
	}
	f.spec.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/scratch", Type: "ext4", Source: img, Options: []string{"rw", "noatime"}},
		{Destination: "/gone", Type: "ext4", Source: "/nonexistent/disk.img"},
		{Destination: "/data", Type: "xfs", Source: img, Options: []string{"ro"}},
	}
	if block != "" {
		f.spec.Mounts = append(f.spec.Mounts, specs.Mount{Destination: "/blk", Type: "ext4", Source: block})
	}
	b := f.mustLoad()
	wantMounts := []agent.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/scratch", Type: "ext4", Source: "/dev/vdb", Options: []string{"rw", "noatime"}},
		{Destination: "/data", Type: "xfs", Source: "/dev/vdc", Options: []string{"ro"}},
	}
	wantDisks := []Disk{{Path: img}, {Path: img, ReadOnly: true}}
	if block != "" {
		wantMounts = append(wantMounts, agent.Mount{Destination: "/blk", Type: "ext4", Source: "/dev/vdd"})
		wantDisks = append(wantDisks, Disk{Path: block})
	}
	if !reflect.DeepEqual(b.Process.Mounts, wantMounts) {
		t.Errorf("Mounts =\n%+v\nwant\n%+v", b.Process.Mounts, wantMounts)
	}
	if !reflect.DeepEqual(b.Disks, wantDisks) {
		t.Errorf("Disks = %+v, want %+v", b.Disks, wantDisks)
	}
	want := `mounts: /gone: type "ext4" not mounted`
	if len(b.Unsupported) != 1 || !strings.HasPrefix(b.Unsupported[0], want) {
		t.Errorf("Unsupported = %q, want one line starting %q", b.Unsupported, want)
	}
}
