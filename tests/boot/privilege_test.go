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
	w := newIOWork(t, patternImage(t, "a.img", 4, 2<<20), 4, false)
	stats := filepath.Join(t.TempDir(), "stats.json")
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "run", "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M",
		"--disk", "path="+w.img+",aio=io_uring", "--net", "tap="+w.tap, "--stats", stats, "--cmdline", w.cmdline())
	o := confinedRun(t, cmd, "tcpsend=", func(pid int) { checkConfined(t, pid, true) })
	w.check(t, o)
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
	dir := userDir(t)
	bin, kernel, initrd := filepath.Join(dir, "govmm"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	for from, to := range map[string]string{e.bin: bin, e.kernel: kernel, e.initrd: initrd} {
		must(t, "cp", from, to)
	}
	img := filepath.Join(dir, "disk.img")
	must(t, "cp", patternImage(t, "disk.img", 5, 2<<20), img)
	for _, p := range []string{bin, kernel, initrd, img} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	w := newIOWork(t, img, 5, true)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--kernel", kernel, "--initrd", initrd, "--memory", "256M",
		"--disk", "path="+img, "--net", "tap="+w.tap, "--cmdline", w.cmdline())
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
	w.check(t, o)
}

// userDir is a directory that the user nobody can reach: root's own
// (the cache, the test's temporary ones) are closed to it, so a tmpfs of
// its own under /var/tmp, which everyone may cross.
func userDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "govmm-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=256m"); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// userTap makes a tap that nobody may attach to, with addr (CIDR) on the
// host's side, as root would for an unprivileged user.
func userTap(t *testing.T, name, addr string) {
	t.Helper()
	exec.Command("ip", "link", "del", name).Run() // left over from a killed run
	must(t, "ip", "tuntap", "add", "dev", name, "mode", "tap", "user", fmt.Sprint(nobody))
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	must(t, "ip", "addr", "add", addr, "dev", name)
	must(t, "ip", "link", "set", name, "up")
}

// --jail: the VM's govmm runs chrooted into the jail, in new mount, PID
// and IPC namespaces, as the jail's user, confined like any other, and the
// guest does its disk and network I/O from there.
func TestJailRunsTheVMChrootedAsItsUser(t *testing.T) {
	e := testEnv(t)
	jail := userDir(t)
	must(t, "cp", e.kernel, filepath.Join(jail, "vmlinuz"))
	must(t, "cp", e.initrd, filepath.Join(jail, "initrd"))
	img := filepath.Join(jail, "disk.img")
	must(t, "cp", patternImage(t, "disk.img", 6, 2<<20), img)
	if err := os.Chown(img, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	w := newIOWork(t, img, 6, true)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "run", "--jail", jail, "--uid", fmt.Sprint(nobody), "--gid", fmt.Sprint(nobody),
		"--kernel", "/vmlinuz", "--initrd", "/initrd", "--memory", "256M",
		"--disk", "path=/disk.img", "--net", "tap="+w.tap, "--cmdline", w.cmdline())
	o := confinedRun(t, cmd, "tcpsend=", func(parent int) {
		pid := childOf(t, parent)
		// The same directory, however this process's own root (a chroot
		// in the sandbox) makes /proc name it.
		root, err := os.Stat(fmt.Sprintf("/proc/%d/root", pid))
		want, _ := os.Stat(jail)
		if err != nil || !os.SameFile(root, want) {
			name, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
			t.Errorf("the jailed govmm's root is %q (%v), want %s", name, err, jail)
		}
		for _, ns := range []string{"mnt", "pid", "ipc"} {
			theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
			ours, _ := os.Readlink("/proc/self/ns/" + ns)
			if theirs == "" || theirs == ours {
				t.Errorf("the jailed govmm's %s namespace is %q, ours %q: want a new one", ns, theirs, ours)
			}
		}
		for tid, uid := range threadStatus(t, pid, "Uid") {
			if f := strings.Fields(uid); len(f) != 4 || f[0] != fmt.Sprint(nobody) {
				t.Errorf("jailed govmm thread %s runs as Uid %s, want %d", tid, uid, nobody)
			}
		}
		checkConfined(t, pid, true)
	})
	w.check(t, o)
}

// childOf is the one child process of pid.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ")".
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		var state string
		var child, ppid int
		fmt.Sscan(string(b), &child)
		if _, err := fmt.Sscan(rest, &state, &ppid); err == nil && ppid == pid {
			kids = append(kids, child)
		}
	}
	if len(kids) != 1 {
		t.Fatalf("govmm %d has children %v, want one: the jailed govmm", pid, kids)
	}
	return kids[0]
}

// ioWork is what every confinement test's guest does: read its disk whole
// and send 1 MiB to the host over its tap, on subnet 10.77.N.0/24.
type ioWork struct {
	img, tap string
	n        int
	send     *transfer
}

// newIOWork sets up the host's side: the tap (made for nobody when
// forNobody) and the listener for the guest's stream.
func newIOWork(t *testing.T, img string, n int, forNobody bool) ioWork {
	t.Helper()
	w := ioWork{img: img, tap: fmt.Sprintf("gvtap%d", n), n: n}
	if forNobody {
		userTap(t, w.tap, w.host()+"/24")
	} else {
		hostTap(t, w.tap, w.host()+"/24")
	}
	w.send = serveReceive(t, w.host(), w.port(), 1)
	return w
}

func (w ioWork) host() string { return fmt.Sprintf("10.77.%d.1", w.n) }
func (w ioWork) port() int    { return 5001 + 10*w.n }
func (w ioWork) tcpsend() string {
	return fmt.Sprintf("tcpsend=%s:%d:1", w.host(), w.port())
}

// cmdline has the guest do the work, then hold for a few seconds so that
// the test sees govmm while the guest still runs.
func (w ioWork) cmdline() string {
	return cmdline(fmt.Sprintf("govmm.check=disk=/dev/vda,net=eth0:10.77.%d.2/24,%s", w.n, w.tcpsend()), "govmm.hold=3000")
}

// check says whether the guest read the disk the host wrote and the host
// received what the guest sent.
func (w ioWork) check(t *testing.T, o outcome) {
	t.Helper()
	wantField(t, passed(t, o, "disk=/dev/vda"), "sha256", fileSHA256(t, w.img))
	wantField(t, passed(t, o, w.tcpsend()), "sha256", w.send.sum())
}
