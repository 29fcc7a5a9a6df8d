package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"github.com/govmm/govmm"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notKernel, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A FIFO nobody writes to: opening it for reading the usual way would
	// block this test for ever.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big") // sparse: 64 MiB that take no disk
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"run"}, exitUsage, "--kernel is required"},
		{[]string{"run", "--kernel", notKernel, "--memory", "12X"}, exitUsage, "--memory"},
		{[]string{"run", "--kernel", notKernel, "extra"}, exitUsage, `unexpected argument "extra"`},
		// Every configuration error, found by the flags or by Validate, has
		// the one status, before anything is opened or read.
		{[]string{"run", "--kernel", filepath.Join(dir, "missing")}, exitUsage, "no such file"},
		{[]string{"run", "--kernel", notKernel, "--cpus", "0"}, exitUsage, "--cpus 0"},
		{[]string{"run", "--kernel", notKernel, "--net", "tap=t0,ip=10.0.0.2/24"}, exitUsage, "ip= configures the NIC for a --bundle process"},
		{[]string{"run", "--kernel", notKernel, "--cpus", "100000"}, exitUsage, "cpus"},
		{[]string{"run", "--kernel", notKernel, "--memory", "1M"}, exitUsage, "at least 16 MiB"},
		{[]string{"run", "--kernel", notKernel, "--memory", "0"}, exitUsage, "--memory 0: give a size of at least 16M"},
		{[]string{"run", "--kernel", notKernel, "--memory", "100T"}, exitUsage, "the host has"},
		{[]string{"run", "--kernel", fifo}, exitUsage, "is not a regular file (a FIFO)"},
		{[]string{"run", "--kernel", dir}, exitUsage, "is not a regular file (a directory)"},
		{[]string{"run", "--kernel", "/dev/null"}, exitUsage, "is not a regular file (a character device)"},
		{[]string{"run", "--kernel", empty}, exitUsage, "is empty"},
		{[]string{"run", "--kernel", big, "--memory", "32M"}, exitUsage, "more than the guest's 32 MiB of RAM"},
		{[]string{"run", "--kernel", notKernel, "--initrd", big, "--memory", "32M"}, exitUsage, "more than the guest's 32 MiB of RAM"},
		{[]string{"run", "--kernel", notKernel, "--cmdline", strings.Repeat("x", 2048)}, exitUsage, "2048 bytes: Linux on x86 takes at most 2047"},
		{[]string{"run", "--kernel", notKernel, "--disk", "path=" + fifo}, exitUsage, "(a FIFO)"},
		{[]string{"run", "--kernel", notKernel, "--net", "tap=t0,mac=00:00:00:00:00:00"}, exitUsage, "00:00:00:00:00:00 is no address"},
		{[]string{"run", "--kernel", notKernel, "--net", "tap=t0,mac=01:00:5e:00:00:01"}, exitUsage, "multicast"},
		{[]string{"run", "--kernel", notKernel, "--stats", dir}, exitUsage, "is a directory"},
		{[]string{"run", "--kernel", notKernel, "--boot", "fast"}, exitUsage, `--boot "fast": use auto, bzimage or pvh`},
		{[]string{"run", "--kernel", notKernel, "--stats", filepath.Join(dir, "no", "s.json")}, exitUsage, "does not exist: create it first"},
		// govmm-compare is not beside the test binary: the exec fails, saying which.
		{[]string{"compare", "--runs", "1"}, exitError, "govmm-compare: no such file or directory"},
	} {
		var stdout, stderr bytes.Buffer
		status := dispatch(tc.args, os.Stdin, &stdout, &stderr)
		if status != tc.status || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("govmm %q: status %d, stderr %q; want status %d and %q", tc.args, status, stderr.String(), tc.status, tc.want)
		}
	}
}

// TestBadBundleStopsBeforeAVM: a bundle that cannot run is refused with
// run --bundle's status and a message naming the problem, before govmm
// opens KVM (the test's KVM path does not exist).
func TestBadBundleStopsBeforeAVM(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	if err := os.MkdirAll(filepath.Join(good, "rootfs", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(good, "rootfs", "bin", "sh"), []byte("#!"), 0o755)
	os.WriteFile(filepath.Join(good, "config.json"), []byte(`{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
		"process": {"args": ["/bin/sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}}}`), 0o644)
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"--bundle", good, "--root-image", kernel}, exitBundleError, "not an ext4 image"},
		{[]string{"--bundle", good, "--root-image", filepath.Join(dir, "no-image")}, exitBundleError, "no-image"},
		{[]string{"--root-image", kernel}, exitUsage, "give --bundle too"},
		{[]string{"--bundle", empty}, exitBundleError, "config.json"},
		{[]string{"--bundle", filepath.Join(dir, "missing")}, exitBundleError, "missing"},
		{[]string{"--bundle", empty, "--console", "virtio"}, exitUsage, "--console"},
		{[]string{"--bundle", empty, "--initrd", filepath.Join(dir, "no-initrd")}, exitUsage, "make kernel initramfs"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"run", "--kernel", kernel, "--initrd", kernel, "--kvm", filepath.Join(dir, "no-kvm")}, tc.args...)
		status := dispatch(args, os.Stdin, &stdout, &stderr)
		if status != tc.status || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("govmm %q: status %d, stderr %q; want status %d and %q", tc.args, status, stderr.String(), tc.status, tc.want)
		}
		if strings.Contains(stderr.String(), "no-kvm") {
			t.Errorf("govmm %q got as far as opening KVM: %s", tc.args, stderr.String())
		}
	}
}

func TestHelpDocumentsEveryFlagAndExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if status := dispatch([]string{"run", "--help"}, os.Stdin, &stdout, &stderr); status != 0 {
		t.Fatalf("--help exit status %d", status)
	}
	help := stderr.String()
	for _, want := range []string{"--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--stats", "--debug", "Ctrl-A x",
		"0  the guest powered off", "3  the guest rebooted", "4  the guest crashed", "5  stopped",
		"--bundle", "124  the VM ended before the process", "125  govmm could not run the bundle", "127  the process's executable does not exist"} {
		if !strings.Contains(help, want) {
			t.Errorf("run --help does not mention %q", want)
		}
	}
}

// help and version print to standard output and succeed without a VM:
// nothing about a guest on standard error.
func TestHelpAndVersionSucceed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "govmm runs a Linux kernel"},
		{[]string{"--help"}, "govmm runs a Linux kernel"},
		{[]string{"version"}, "govmm "},
		{[]string{"--version"}, "govmm "},
	} {
		var stdout, stderr bytes.Buffer
		status := dispatch(tc.args, os.Stdin, &stdout, &stderr)
		if status != exitOK || !strings.HasPrefix(stdout.String(), tc.want) || stderr.Len() != 0 {
			t.Errorf("govmm %q: status %d, stdout %q, stderr %q; want %d, %q first, nothing on stderr", tc.args, status, stdout.String(), stderr.String(), exitOK, tc.want)
		}
	}
}

func TestVersionString(t *testing.T) {
	rev := "3f2a9c0d1e4b5a6978877665544332211f0e0d0c"
	build := func(version string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/govmm/govmm", Version: version}, Settings: settings}
	}
	for _, tc := range []struct {
		name   string
		linked string
		info   *debug.BuildInfo
		want   string
	}{
		{"release", "", build("v0.3.0", debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), "v0.3.0 (revision " + rev + ")"},
		{"checkout with changes", "", build("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), "(devel) (revision " + rev + ", modified)"},
		{"go install", "", build("v0.3.1-0.20260101000000-3f2a9c0d1e4b"), "v0.3.1-0.20260101000000-3f2a9c0d1e4b"},
		{"linked", "1.0-rc1", build("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: rev}), "1.0-rc1 (revision " + rev + ")"},
		{"no build info", "", nil, "(unknown)"},
	} {
		if got := versionString(tc.linked, tc.info); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A built binary prints the module version and VCS revision that go
// version -m finds in it (a build from a git clone records the revision; a
// git worktree, or GOFLAGS=-buildvcs=false, records none), and -X
// main.version overrides the version.
func TestVersionOfABuiltBinary(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		ldflags, want string
	}{{"", ""}, {"-X main.version=9.9.9-test", "9.9.9-test"}} {
		bin := filepath.Join(dir, "govmm")
		if out, err := exec.Command("go", "build", "-ldflags", tc.ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		meta, err := exec.Command("go", "version", "-m", bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"govmm " + tc.want}
		for _, line := range strings.Split(string(meta), "\n") {
			f := strings.Fields(line)
			switch {
			case tc.want == "" && len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/govmm/govmm":
				want = append(want, "govmm "+f[2])
			case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
				want = append(want, "revision "+strings.TrimPrefix(f[1], "vcs.revision="))
			}
		}
		if tc.want == "" && len(want) < 2 {
			t.Fatalf("go version -m %s shows no module version:\n%s", bin, meta)
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("govmm version (ldflags %q) printed %q, want %q in it (build info:\n%s)", tc.ldflags, out, w, meta)
			}
		}
	}
}

// Each way a VM ends has the exit status --help documents, and a failure
// to run it is status 1 whatever the reason says.
func TestExitStatuses(t *testing.T) {
	for _, tc := range []struct {
		res    govmm.Result
		runErr error
		status int
		stderr string
	}{
		{govmm.Result{Reason: govmm.PoweredOff}, nil, 0, ""},
		{govmm.Result{Reason: govmm.Rebooted, Detail: "guest reset"}, nil, 3, "guest reset"},
		{govmm.Result{Reason: govmm.Crashed, Detail: "guest kernel panicked"}, nil, 4, "guest crashed: guest kernel panicked"},
		{govmm.Result{Reason: govmm.Crashed, Detail: "triple fault (KVM_EXIT_SHUTDOWN)"}, nil, 4, "triple fault"},
		{govmm.Result{Reason: govmm.Stopped, Detail: "received interrupt"}, nil, 5, "stopped: received interrupt"},
		{govmm.Result{Reason: govmm.Crashed, Detail: "vCPU 0: KVM_RUN: bad address"}, errors.New("vCPU 0: KVM_RUN: bad address"), 1, "bad address"},
		{govmm.Result{}, nil, 1, "unknown reason"},
	} {
		var stderr bytes.Buffer
		if status := report(tc.res, tc.runErr, &runFlags{}, &stderr); status != tc.status || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%v %q (error %v): status %d, stderr %q; want %d and %q", tc.res.Reason, tc.res.Detail, tc.runErr, status, stderr.String(), tc.status, tc.stderr)
		}
	}
}
