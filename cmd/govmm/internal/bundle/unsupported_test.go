package bundle

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The config `runc spec` (runc 1.1) writes runs, and only what a VM
// cannot do is reported; its devices rule (deny all) is not.
func TestRuncSpec(t *testing.T) {
	data, err := os.ReadFile("testdata/runc-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.raw = string(data)
	b := f.mustLoad()
	want := []string{
		"process.capabilities: not applied: the process has its uid's capabilities in the guest, all of them for uid 0",
		"linux.maskedPaths: not applied (10 paths): they are the guest's, not the host's",
		"linux.readonlyPaths: not applied (5 paths): they are the guest's, not the host's",
	}
	if !reflect.DeepEqual(b.Unsupported, want) {
		t.Errorf("Unsupported =\n\t%s\nwant\n\t%s", strings.Join(b.Unsupported, "\n\t"), strings.Join(want, "\n\t"))
	}
	p := b.Process
	if !p.Terminal || !p.ReadOnly || !p.NoNewPrivileges || p.Hostname != "runc" || len(p.Mounts) != 7 ||
		len(p.Rlimits) != 1 || p.Rlimits[0].Hard != 1024 || p.RootDevice != "/dev/vda" {
		t.Errorf("Process = %+v", p)
	}
}

func TestUnsupported(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string // merged into the fixture's spec
		want   []string
	}{
		{"bind mounts", `{"mounts": [{"destination": "/data", "type": "bind", "source": "/srv/data"},
			{"destination": "/etc/resolv.conf", "source": "/run/resolv.conf", "options": ["rbind", "ro"]}]}`, []string{
			"mounts: /data: bind mount of the host's /srv/data not made: the guest cannot see the host's files",
			"mounts: /etc/resolv.conf: bind mount of the host's /run/resolv.conf not made: the guest cannot see the host's files"}},
		{"other file system", `{"mounts": [{"destination": "/mnt", "type": "nfs", "source": "server:/x"}]}`, []string{
			`mounts: /mnt: type "nfs" not mounted: the guest makes only proc, sysfs, tmpfs, devtmpfs, devpts, mqueue and cgroup file systems, and mounts what a host block device or image file holds`}},
		{"id-mapped mount", `{"mounts": [{"destination": "/t", "type": "tmpfs", "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}]}`, []string{
			"mounts: /t: not mounted: id-mapped mounts are not supported"}},
		{"hooks", `{"hooks": {"prestart": [{"path": "/bin/a"}], "poststop": [{"path": "/bin/b"}]}}`, []string{"hooks: not run (poststop, prestart)"}},
		{"cgroupsPath", `{"linux": {"cgroupsPath": "/user.slice/x"}}`, []string{"linux.cgroupsPath: not used: the VM is not put in a host cgroup"}},
		{"seccomp", `{"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}`, []string{"linux.seccomp: not applied: the guest kernel is the boundary"}},
		{"LSMs", `{"process": {"apparmorProfile": "docker-default", "selinuxLabel": "system_u:r:c"}}`, []string{
			"process.apparmorProfile: not applied: the guest loads no AppArmor policy", "process.selinuxLabel: not applied: the guest loads no SELinux policy"}},
		{"devices", `{"linux": {"devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}`, []string{
			"linux.devices: not created (/dev/fuse): the guest has only its own devices"}},
		{"id mappings", `{"linux": {"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}], "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}`, []string{
			"linux.uidMappings: not applied: the process runs as its uid in the guest, unmapped",
			"linux.gidMappings: not applied: the process runs as its gid in the guest, unmapped"}},
		{"namespace paths", `{"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/a"}, {"type": "uts"}, {"type": "mount"}, {"type": "ipc"}]}}`, []string{
			"linux.namespaces: network namespace /var/run/netns/a not joined: the VM has its own"}},
		{"host network", `{"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}`, []string{
			"linux.namespaces: no network namespace asks for the host's network: the guest has only its own"}},
		{"sysctl", `{"linux": {"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}}}`, []string{"linux.sysctl: not set: kernel.shmmax, net.ipv4.ip_forward"}},
		{"oomScoreAdj, ioPriority", `{"process": {"oomScoreAdj": 100, "ioPriority": {"class": "IOPRIO_CLASS_IDLE"}}}`, []string{
			"process.oomScoreAdj: not applied", "process.ioPriority: not applied"}},
		{"resources", `{"linux": {"resources": {"pids": {"limit": 10}, "memory": {"limit": 134217728, "swap": 1}, "blockIO": {"weight": 10}}}}`, []string{
			"linux.resources.blockIO: not applied", "linux.resources.memory.swap: not applied: only the limit sizes the VM", "linux.resources.pids: not applied"}},
		{"devices allow all", `{"linux": {"resources": {"devices": [{"allow": true, "access": "rwm"}]}}}`, []string{
			"linux.resources.devices: not applied: the guest has only its own devices"}},
		{"devices deny all first", `{"linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}}}`, nil},
		{"honoured or meaningless", `{"linux": {"rootfsPropagation": "private", "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "user"}]}, "annotations": {"a": "b"}}`, nil},
		{"domainname", `{"domainname": "example.org"}`, []string{`domainname "example.org": not set: the guest gets the hostname only`}},
		{"other platforms", `{"windows": {"layerFolders": null}, "vm": {"kernel": {"path": "/k"}}}`, []string{
			"windows: ignored: govmm runs the process in its own Linux guest", "vm: ignored: govmm runs the process in its own Linux guest"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			if err := json.Unmarshal([]byte(c.config), f.spec); err != nil {
				t.Fatal(err)
			}
			b := f.mustLoad()
			if !reflect.DeepEqual(b.Unsupported, c.want) {
				t.Errorf("Unsupported =\n\t%s\nwant\n\t%s", strings.Join(b.Unsupported, "\n\t"), strings.Join(c.want, "\n\t"))
			}
		})
	}
}
