package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// With --console virtio, hvc0 becomes the guest's console once the initramfs
// has loaded virtio_console (a module in Debian's kernel, so the kernel's
// first messages and init's first lines go to ttyS0), and what the guest
// writes to /dev/hvc0 reaches govmm's output.
func TestVirtioConsoleCarriesTheConsole(t *testing.T) {
	e := testEnv(t)
	o := run(t, e, "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--console", "virtio",
		"--cmdline", "console=ttyS0 console=hvc0 reboot=k,panic_warm panic=-1 quiet govmm.check=hvc")
	if o.status != statusPoweredOff || o.guest.Report == nil {
		t.Fatalf("want a guest report over hvc0 and exit status 0, got status %d\nstdout:\n%s\nstderr:\n%s", o.status, o.stdout, o.stderr)
	}
	c := passed(t, o, "hvc")
	if got, _ := c.Field("console"); !strings.Contains(got, "hvc0") {
		t.Errorf("guest's active consoles %q do not include hvc0", got)
	}
	if _, ok := o.guest.Check("hvc-marker"); !ok {
		t.Errorf("the line the guest wrote to /dev/hvc0 did not reach govmm's output:\n%s", o.stdout)
	}
}

// virtio-rng feeds the guest's entropy pool: the guest's hwrng is the
// virtio device and the pool is ready at init.
func TestGuestEntropyFromVirtioRNG(t *testing.T) {
	e := testEnv(t)
	o := bootWith(t, e, nil, "govmm.check=entropy")
	c := passed(t, o, "entropy")
	wantField(t, c, "rng_current", "virtio_rng.0")
	wantField(t, c, "pool_ready", "true")
}

// A guest that prints without pause to an output nobody reads does not keep
// govmm from stopping it: the console's output is buffered off the vCPUs,
// so no vCPU waits on the full pipe, SIGTERM stops the VM with the
// "stopped" status, and govmm says how much console output it dropped.
// Before, the vCPU blocked in its write to the pipe and govmm never exited.
func TestStopsAGuestFloodingAConsoleNobodyReads(t *testing.T) {
	e := testEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The smallest pipe, one page: the guest's console, a few hundred
	// bytes a second under the sandbox's emulation, fills it in seconds.
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, e.bin, "run", "--kernel", e.kernel, "--initrd", e.initrd,
		"--memory", "256M", "--cmdline", cmdline("govmm.exit=flood"))
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	size, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Full: more than half the pipe's capacity waiting, and no more for a
	// second. (Waiting for exactly its capacity would wait for ever: the
	// pipe's pages need not be filled to the last byte.)
	for last, still := -1, 0; ; {
		n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ) // FIONREAD: bytes waiting
		if err != nil {
			t.Fatal(err)
		}
		if n == last && n > size/2 {
			if still++; still == 10 {
				break
			}
		} else {
			last, still = n, 0
		}
		select {
		case err := <-exited:
			t.Fatalf("govmm ended (%v) with %d of the pipe's %d bytes filled\nstderr:\n%s", err, n, size, stderr.String())
		case <-ctx.Done():
			t.Fatalf("the guest filled %d of the pipe's %d bytes before the timeout\nstderr:\n%s", n, size, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// While the guest runs: govmm gains no privileges through exec, and its
	// guest RAM stays out of core dumps.
	checkHardened(t, cmd.Process.Pid)
	checkConfined(t, cmd.Process.Pid, true)
	// The pipe is full: govmm's writer is blocked in it and the guest's
	// output piles up behind it.
	select {
	case err := <-exited:
		t.Fatalf("govmm ended (%v) before SIGTERM, its stdout full\nstderr:\n%s", err, stderr.String())
	case <-time.After(2 * time.Second):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\nstderr:\n%s", err, stderr.String())
	}
	select {
	case err = <-exited:
	case <-ctx.Done():
		t.Fatalf("govmm still running %v after SIGTERM with its stdout full\nstderr:\n%s", bootTimeout, stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != statusStopped {
		t.Fatalf("govmm after SIGTERM with its stdout full: %v, want exit status %d (stopped)\nstderr:\n%s", err, statusStopped, stderr.String())
	}
	if !strings.Contains(stderr.String(), "bytes of console output were dropped") {
		t.Errorf("govmm did not say it dropped console output:\n%s", stderr.String())
	}
}

// checkHardened checks a running govmm: NoNewPrivs on every thread, and a
// large mapping (guest RAM) marked dd, MADV_DONTDUMP.
func checkHardened(t *testing.T, pid int) {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if len(tasks) == 0 {
		t.Errorf("no threads of govmm %d in /proc", pid)
	}
	for _, path := range tasks {
		if status, err := os.ReadFile(path); err == nil && !strings.Contains(string(status), "NoNewPrivs:\t1") {
			t.Errorf("%s: NoNewPrivs is not 1", path)
		}
	}
	smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	// A mapping's header line, its Size: line, ..., its VmFlags: line.
	var size int
	for _, line := range strings.Split(string(smaps), "\n") {
		if kb, ok := strings.CutPrefix(line, "Size:"); ok {
			size, _ = strconv.Atoi(strings.Fields(kb)[0])
		}
		if strings.HasPrefix(line, "VmFlags:") && size >= 128<<10 && strings.Contains(line+" ", " dd ") {
			return
		}
	}
	t.Errorf("no mapping of 128 MiB or more (guest RAM) is marked dd (MADV_DONTDUMP) in govmm's smaps")
}
