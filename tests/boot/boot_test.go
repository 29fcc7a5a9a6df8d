package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm"
	"github.com/govmm/govmm/guest/report"
)

// Exit statuses of `govmm run` (see govmm run --help).
const (
	statusPoweredOff = 0
	statusError      = 1
	statusRebooted   = 3
	statusCrashed    = 4
	statusStopped    = 5
)

// bootTimeout is generous: the nested sandbox is 20–50× slower than hardware.
const bootTimeout = 3 * time.Minute

type outcome struct {
	status         int
	stdout, stderr string
	guest          report.Console
}

// cmdline is the default command line, quiet, plus the test's parameters.
// A soft lockup panics the guest: quiet hides the lockup's registers and
// stack, a panic prints them, and the test ends at once instead of at its
// deadline.
func cmdline(extra ...string) string {
	return strings.Join(append([]string{govmm.DefaultCmdline, "quiet", "softlockup_panic=1"}, extra...), " ")
}

// run boots the govmm binary and returns what it and the guest said.
func run(t *testing.T, e env, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"run"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := runOrDiagnose(t, ctx, cmd)
	o := outcome{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("govmm %q: no exit after %v; stopped with SIGQUIT (%v)\nstdout:\n%s\nstderr (goroutines):\n%s",
			args, bootTimeout, err, o.stdout, o.stderr)
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		o.status = exit.ExitCode()
	default:
		t.Fatalf("govmm %q: %v (after %v)\nstdout:\n%s\nstderr:\n%s", args, err, time.Since(start), o.stdout, o.stderr)
	}
	o.guest = report.Scan(strings.NewReader(o.stdout))
	t.Logf("govmm run: status %d after %v", o.status, time.Since(start).Round(time.Millisecond))
	return o
}

// bootGuest boots the test initramfs with the given vCPUs, memory and extra
// command line, expecting the guest to report and power off.
func bootGuest(t *testing.T, e env, cpus int, mem string, extra ...string) outcome {
	t.Helper()
	o := run(t, e, "--kernel", e.kernel, "--initrd", e.initrd, "--cpus", fmt.Sprint(cpus), "--memory", mem,
		"--cmdline", cmdline(extra...))
	if o.status != statusPoweredOff || o.guest.Report == nil {
		t.Fatalf("want a guest report and exit status 0, got status %d\nstdout:\n%s\nstderr:\n%s", o.status, o.stdout, o.stderr)
	}
	t.Logf("guest report: %s", o.guest.Report.Line())
	return o
}

func TestBootReportsCPUs(t *testing.T) {
	e := testEnv(t)
	for _, cpus := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d vCPUs", cpus), func(t *testing.T) {
			o := bootGuest(t, e, cpus, "256M")
			if got := o.guest.Report.CPUs; got != cpus {
				t.Errorf("guest sees %d CPUs online, want %d", got, cpus)
			}
			// kvmclock keeps time and the local APIC timer runs in
			// TSC-deadline mode, as in a QEMU guest: no PIT, HPET or
			// count-down timer that an emulated host serves worse.
			if r := o.guest.Report; r.Clocksource != "kvm-clock" || r.ClockEvents != "lapic-deadline" {
				t.Errorf("guest clocksource %q and clockevents %q, want kvm-clock and lapic-deadline", r.Clocksource, r.ClockEvents)
			}
		})
	}
}

func TestBootReportsMemory(t *testing.T) {
	e := testEnv(t)
	for _, tc := range []struct {
		flag string
		size uint64
		// The kernel keeps its image, page structs and reserved areas out
		// of MemTotal: allow up to slack below the configured size.
		slack uint64
	}{
		{"256M", 256 << 20, 64 << 20},
		// 4 GiB crosses the PCI hole: 3 GiB below it, 1 GiB above 4 GiB.
		{"4G", 4 << 30, 200 << 20},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			o := bootGuest(t, e, 1, tc.flag)
			got := o.guest.Report.MemTotalKB << 10
			if got > tc.size || got < tc.size-tc.slack {
				t.Errorf("guest MemTotal %d MiB, want between %d and %d MiB", got>>20, (tc.size-tc.slack)>>20, tc.size>>20)
			}
		})
	}
}

func TestCmdlineAndInitrdArriveIntact(t *testing.T) {
	e := testEnv(t)
	if e.payloadSHA256 == "" {
		t.Fatal("GOVMM_PAYLOAD_SHA256_FILE is not set: the Makefile passes the digest of the initramfs payload")
	}
	token := fmt.Sprintf("govmm.token=%x", time.Now().UnixNano())
	want := cmdline(token, `govmm.quoted="a b"`)
	o := bootGuest(t, e, 1, "256M", token, `govmm.quoted="a b"`)
	if got := o.guest.Report.Cmdline; got != want {
		t.Errorf("guest /proc/cmdline = %q\nwant %q", got, want)
	}
	if got := o.guest.Report.PayloadSHA256; got != e.payloadSHA256 {
		t.Errorf("guest sha256 of /payload.bin = %q, host packed %q", got, e.payloadSHA256)
	}
}

// The guest's clock comes from govmm's CMOS RTC, and the initramfs's virtio
// modules load into the kernel govmm booted.
func TestGuestClockAndModules(t *testing.T) {
	e := testEnv(t)
	o := bootGuest(t, e, 1, "256M", "govmm.check=rtc,modules")
	skew := time.Duration(o.guest.Report.TimeUnix-time.Now().Unix()) * time.Second
	// The guest reads the RTC once, early in boot, to the second; the boot
	// takes seconds under emulation. Minutes of skew mean a broken clock.
	if skew < -2*time.Minute || skew > 2*time.Minute {
		t.Errorf("guest clock is %v off the host's (guest says %v)", skew, time.Unix(o.guest.Report.TimeUnix, 0).UTC())
	}
	for _, name := range []string{"rtc", "modules"} {
		c, ok := o.guest.Check(name)
		if !ok || !c.OK {
			t.Errorf("guest check %q: %+v (ran: %v)", name, c, ok)
		}
	}
}

func TestGuestEndings(t *testing.T) {
	e := testEnv(t)
	for _, tc := range []struct {
		action string
		status int
		stderr string
	}{
		{"poweroff", statusPoweredOff, ""},
		{"reboot", statusRebooted, "reset"},
		{"panic", statusCrashed, "panic"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			o := run(t, e, "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M",
				"--cmdline", cmdline("govmm.exit="+tc.action))
			if o.guest.Report == nil || o.guest.Done != tc.action {
				t.Errorf("guest did not report and announce %q (done %q)\nstdout:\n%s", tc.action, o.guest.Done, o.stdout)
			}
			if o.status != tc.status || !strings.Contains(o.stderr, tc.stderr) {
				t.Errorf("guest %s: exit status %d, stderr %q; want %d and %q", tc.action, o.status, o.stderr, tc.status, tc.stderr)
			}
		})
	}
}

func TestNotABzImageIsAClearError(t *testing.T) {
	e := testEnv(t)
	notKernel := filepath.Join(t.TempDir(), "vmlinux.txt")
	if err := os.WriteFile(notKernel, bytes.Repeat([]byte("not a kernel\n"), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	o := run(t, e, "--kernel", notKernel)
	if o.status != statusError || !strings.Contains(o.stderr, "bzImage") || !strings.Contains(o.stderr, notKernel) {
		t.Errorf("status %d, stderr %q; want status %d and a message naming the file and bzImage", o.status, o.stderr, statusError)
	}
}
