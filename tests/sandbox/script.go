package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// initScript is the sandbox's PID 1: load modules, mount the host's / and
// run the command prepared in the run directory named on the command line.
const initScript = `#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m params; do
	insmod /modules/$m.ko $params 2>/dev/null || echo "sandbox: could not load module $m $params" >/dev/console
done </modules/order
dir=$(sed -n 's/.*govmm\.sandbox=\([^ ]*\).*/\1/p' /proc/cmdline)
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 host /host; then
	echo "sandbox: could not mount the host's / over virtio-9p"
	poweroff -f
fi
if [ ! -c /dev/kvm ]; then
	echo "no /dev/kvm in the sandbox: kvm-amd did not load (does QEMU's -cpu max offer SVM?)" > /host$dir/diagnosis
fi
# Device permissions as Debian's udev rules set them, since no udev runs
# here: /dev/kvm for the host's kvm group (root's alone where the host has
# none), /dev/net/tun for everyone. The boot tests run govmm unprivileged.
kvmgid=$(sed -n 's/^kvm:[^:]*:\([0-9]*\):.*/\1/p' /host/etc/group)
if [ -n "$kvmgid" ]; then
	chgrp "$kvmgid" /dev/kvm && chmod 0660 /dev/kvm
fi
chmod 0666 /dev/net/tun
mount --rbind /dev /host/dev
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
# cgroup v2 for the container runtimes (runc, crun) run in the sandbox, with
# every controller the kernel offers enabled for the root's children: they
# put each container in a child and limit and measure it there.
if mount -t cgroup2 cgroup2 /host/sys/fs/cgroup; then
	for c in $(cat /host/sys/fs/cgroup/cgroup.controllers); do
		echo +$c > /host/sys/fs/cgroup/cgroup.subtree_control || echo "sandbox: could not enable the cgroup controller $c" >/dev/console
	done
else
	echo "sandbox: could not mount cgroup2: no container runtimes in the sandbox" >/dev/console
fi
mkdir -p /host/dev/pts
mount -t devpts devpts /host/dev/pts 2>/dev/null
# Scratch space in the sandbox's RAM: the host's /tmp over 9p is slow and
# cannot punch holes, which the disk tests check.
mkdir -p /host$dir/tmp && mount -t tmpfs -o size=3g tmpfs /host$dir/tmp
# The heartbeat tells bin/sandbox that this kernel still schedules
# anything: a sandbox whose CPUs are all stuck in the emulated guest panics
# no watchdog and would otherwise sit until -timeout.
( while :; do echo > /host$dir/heartbeat; sleep 5; done ) &
if [ -f /host$dir/interactive ]; then
	setsid -c chroot /host /bin/sh $dir/run.sh
else
	chroot /host /bin/sh $dir/run.sh
fi
echo $? > /host$dir/status
sync
poweroff -f
`

// passedEnv are always handed to the command, with any named by -env.
var passedEnv = []string{"PATH", "HOME", "TERM", "CI", "GOCACHE", "GOMODCACHE"}

// writeRunScript writes run.sh: the working directory, the environment and
// the command, quoted for sh.
func writeRunScript(dir string, o *options) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s || exit 125\n", quote(wd))
	names := append(append([]string{}, passedEnv...), o.env...)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOVMM_") {
			names = append(names, strings.SplitN(kv, "=", 2)[0])
		}
	}
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok {
			fmt.Fprintf(&b, "export %s=%s\n", n, quote(v))
		}
	}
	fmt.Fprintf(&b, "export TMPDIR=%s\n", quote(filepath.Join(dir, "tmp")))
	b.WriteString("export GOVMM_IN_SANDBOX=1\nexec")
	for _, a := range o.command {
		b.WriteString(" " + quote(a))
	}
	b.WriteString("\n")
	if o.interactive {
		if err := os.WriteFile(filepath.Join(dir, "interactive"), nil, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "run.sh"), []byte(b.String()), 0o755)
}

// quote makes s one sh word.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
