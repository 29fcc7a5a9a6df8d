package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govmm/govmm/guest/report"
)

// nobody is the unprivileged user the tests run govmm as: no home, no
// capability, in no group but the one that owns /dev/kvm.
const nobody = 65534

// threadStatus is one line of each thread's /proc status, by thread id.
func threadStatus(t *testing.T, pid int, field string) map[string]string {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	out := map[string]string{}
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				out[filepath.Base(filepath.Dir(path))] = strings.TrimSpace(v)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no thread of govmm %d shows %s in /proc", pid, field)
	}
	return out
}

// checkConfined checks a running govmm as its user would: on every thread
// no capability, no_new_privs, and the seccomp filter (mode 2) unless it
// was turned off (mode 0). The bounding set is empty too where govmm was
// started as root; an unprivileged process cannot empty it, nor use it
// with no_new_privs.
func checkConfined(t *testing.T, pid int, seccomp bool) {
	t.Helper()
	wantMode := "0"
	if seccomp {
		wantMode = "2"
	}
	for tid, mode := range threadStatus(t, pid, "Seccomp") {
		if mode != wantMode {
			t.Errorf("govmm thread %s: Seccomp %s, want %s", tid, mode, wantMode)
		}
	}
	for tid, v := range threadStatus(t, pid, "NoNewPrivs") {
		if v != "1" {
			t.Errorf("govmm thread %s: NoNewPrivs %s, want 1", tid, v)
		}
	}
	sets := []string{"CapEff", "CapPrm", "CapInh", "CapAmb"}
	for _, uid := range threadStatus(t, pid, "Uid") {
		if strings.HasPrefix(uid, "0\t") {
			sets = append(sets, "CapBnd")
			break
		}
	}
	for _, set := range sets {
		for tid, v := range threadStatus(t, pid, set) {
			if strings.Trim(v, "0") != "" {
				t.Errorf("govmm thread %s: %s %s, want none", tid, set, v)
			}
		}
	}
}

// confinedRun boots the test initramfs with flags and the guest checks,
// holding the guest for a few seconds after its checks so that watch sees
// govmm's process while the guest still runs.
func confinedRun(t *testing.T, cmd *exec.Cmd, lastCheck string, watch func(pid int)) outcome {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	sc := bufio.NewScanner(io.TeeReader(stdout, &all))
	watched := false
	for sc.Scan() {
		if !watched && strings.HasPrefix(sc.Text(), report.CheckPrefix) && strings.Contains(sc.Text(), lastCheck) {
			watch(cmd.Process.Pid)
			watched = true
		}
	}
	err = cmd.Wait()
	o := outcome{stdout: all.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		o.status = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("govmm: %v\nstdout:\n%s\nstderr:\n%s", err, o.stdout, o.stderr)
	}
	o.guest = report.Scan(strings.NewReader(o.stdout))
	if !watched {
		t.Fatalf("the guest never ran check %s (status %d)\nstdout:\n%s\nstderr:\n%s", lastCheck, o.status, o.stdout, o.stderr)
	}
	if o.status != statusPoweredOff {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", o.status, o.stdout, o.stderr)
	}
	return o
}

// A guest with a disk, a NIC and the console does its I/O under govmm's
// seccomp filter, with no capability left, and --stats is written at the
// end: nothing govmm does once the guest runs is forbidden.
func TestConfinedVMDoesDiskNetworkAndConsole(t *testing.T) {
	e := testEnv(t)
	hostTap(t, "gvtap4", "10.77.4.1/24")
	send := serveReceive(t, "10.77.4.1", 5041, 1)
	img := patternImage(t, "a.img", 4, 2<<20)
	stats := filepath.Join(t.TempDir(), "stats.json")
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	checks := "govmm.check=disk=/dev/vda,net=eth0:10.77.4.2/24,tcpsend=10.77.4.1:5041:1"
	cmd := exec.CommandContext(ctx, e.bin, "run", "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M",
		"--disk", "path="+img+",aio=io_uring", "--net", "tap=gvtap4", "--stats", stats,
		"--cmdline", cmdline(checks, "govmm.hold=3000"))
	o := confinedRun(t, cmd, "tcpsend=", func(pid int) { checkConfined(t, pid, true) })
	wantField(t, passed(t, o, "disk=/dev/vda"), "sha256", fileSHA256(t, img))
	wantField(t, passed(t, o, "tcpsend=10.77.4.1:5041:1"), "sha256", send.sum())
	if s := readStats(t, stats); len(s.Queues) == 0 {
		t.Errorf("--stats %s has no virtqueues", stats)
	}
}

// --seccomp=off leaves the filter out (and says it is unsafe); the
// capabilities are dropped all the same.
func TestSeccompOffRunsWithoutTheFilter(t *testing.T) {
	e := testEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "run", "--seccomp=off", "--kernel", e.kernel, "--initrd", e.initrd,
		"--memory", "256M", "--cmdline", cmdline("govmm.check=rtc", "govmm.hold=3000"))
	o := confinedRun(t, cmd, "rtc", func(pid int) { checkConfined(t, pid, false) })
	if !strings.Contains(o.stderr, "--seccomp=off") || !strings.Contains(o.stderr, "unsafe") {
		t.Errorf("no warning that --seccomp=off is unsafe:\n%s", o.stderr)
	}
}

// The core of the boot tests as a user with no privilege, in the group
// that owns /dev/kvm, with a tap made for it beforehand: the guest boots,
// reads its disk, sends over its NIC and powers off.
func TestUnprivilegedUserBootsWithDiskAndNetwork(t *testing.T) {
	e := testEnv(t)
	kvm, err := os.Stat("/dev/kvm")
	if err != nil {
		t.Fatal(err)
	}
	st := kvm.Sys().(*syscall.Stat_t)
	if kvm.Mode().Perm()&0o060 != 0o060 {
		t.Fatalf("/dev/kvm is %v: its group cannot open it, so no unprivileged user can", kvm.Mode())
	}
	// Everything the user reads, where it can reach it: root's own
	// directories (the cache, the test's temporary ones) are closed, so a
	// tmpfs of its own under /var/tmp, which everyone may cross.
	dir, err := os.MkdirTemp("/var/tmp", "govmm-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=256m"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	bin, kernel, initrd := filepath.Join(dir, "govmm"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	for from, to := range map[string]string{e.bin: bin, e.kernel: kernel, e.initrd: initrd} {
		must(t, "cp", from, to)
	}
	img := filepath.Join(dir, "disk.img")
	must(t, "cp", patternImage(t, "disk.img", 5, 2<<20), img)
	for _, p := range []string{dir, bin, kernel, initrd, img} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exec.Command("ip", "link", "del", "gvtap5").Run() // left over from a killed run
	must(t, "ip", "tuntap", "add", "dev", "gvtap5", "mode", "tap", "user", fmt.Sprint(nobody))
	t.Cleanup(func() { exec.Command("ip", "link", "del", "gvtap5").Run() })
	must(t, "ip", "addr", "add", "10.77.5.1/24", "dev", "gvtap5")
	must(t, "ip", "link", "set", "gvtap5", "up")
	send := serveReceive(t, "10.77.5.1", 5051, 1)

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	checks := "govmm.check=disk=/dev/vda,net=eth0:10.77.5.2/24,tcpsend=10.77.5.1:5051:1"
	cmd := exec.CommandContext(ctx, bin, "run", "--kernel", kernel, "--initrd", initrd, "--memory", "256M",
		"--disk", "path="+img, "--net", "tap=gvtap5", "--cmdline", cmdline(checks, "govmm.hold=3000"))
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: nobody, Gid: nobody, Groups: []uint32{st.Gid},
	}}
	o := confinedRun(t, cmd, "tcpsend=", func(pid int) {
		for tid, uid := range threadStatus(t, pid, "Uid") {
			if f := strings.Fields(uid); len(f) != 4 || f[0] != fmt.Sprint(nobody) || f[1] != fmt.Sprint(nobody) {
				t.Errorf("govmm thread %s runs as Uid %s, want %d", tid, uid, nobody)
			}
		}
		checkConfined(t, pid, true)
	})
	wantField(t, passed(t, o, "disk=/dev/vda"), "sha256", fileSHA256(t, img))
	wantField(t, passed(t, o, "tcpsend=10.77.5.1:5051:1"), "sha256", send.sum())
}
