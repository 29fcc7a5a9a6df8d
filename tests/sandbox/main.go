// Command sandbox runs one command inside the project's nested-KVM sandbox: a
// QEMU virtual machine, emulated with TCG, whose CPU has AMD SVM, whose
// Debian kernel loads kvm-amd, and which sees the host's / over virtio-9p.
// The command runs chrooted in that /, with the same working directory, so a
// test binary compiled on the host runs unchanged against a working
// /dev/kvm. The sandbox exits with the command's status (125 when the
// sandbox itself fails).
//
//	go run ./tests/sandbox -kernel-tree ~/.cache/govmm/kernel-std -- ./boot.test -test.v
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// exitSandboxFailed is the status when the sandbox, not the command, failed.
const exitSandboxFailed = 125

// exitPowerCut is the status when the command cut the sandbox's power
// (-power-switch): the sandbox stopped at once, nothing in its caches
// written anywhere.
const exitPowerCut = 123

// powerSwitchPort is the I/O port of QEMU's isa-debug-exit device: a byte
// written there ends QEMU at once with status byte<<1 | 1.
const powerSwitchPort = 0xf4

// powerCutQEMUStatus is QEMU's status after the byte 1 at powerSwitchPort.
const powerCutQEMUStatus = 1<<1 | 1

type options struct {
	qemuTree    string // unpacked QEMU packages; "" for the system's QEMU
	kernelTree  string
	kvmAMD      string // kvm-amd's module parameters
	busybox     string
	cacheDir    string
	memoryMiB   int
	logLevel    int
	retries     int
	cpus        int
	timeout     time.Duration
	interactive bool
	disk        string // a raw image the sandbox sees as /dev/vda, or ""
	powerSwitch bool
	env         []string
	command     []string
}

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		os.Exit(2)
	}
	// One deadline for every attempt: -timeout bounds the whole command.
	deadline := time.Now().Add(opts.timeout)
	status, err := run(opts, deadline)
	for attempt := 1; errors.Is(err, errSandboxDied) && attempt <= opts.retries; attempt++ {
		// The sandbox's own kernel died under the command (seen: a kernel
		// stack overflow inside KVM_RUN, once in some dozens of nested
		// boots, a fault of the emulation, not of the tests). Only then is
		// the whole command run again, and said so.
		fmt.Fprintf(os.Stderr, "sandbox: %v\nsandbox: the sandbox itself died, not the command: running it again (%d of %d)\n",
			err, attempt, opts.retries)
		status, err = run(opts, deadline)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		os.Exit(exitSandboxFailed)
	}
	os.Exit(status)
}

// errSandboxDied means the sandbox's kernel ended before the command did.
var errSandboxDied = errors.New("the sandbox's kernel ended before the command did")

type envList []string

func (e *envList) String() string     { return strings.Join(*e, ",") }
func (e *envList) Set(s string) error { *e = append(*e, s); return nil }

func parseFlags(args []string) (*options, error) {
	home, _ := os.UserHomeDir()
	o := &options{}
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.StringVar(&o.qemuTree, "qemu-tree", filepath.Join(home, ".cache/govmm/qemu-sandbox"),
		"unpacked QEMU from Debian bookworm-backports (tests/fetch-qemu.sh DIR, or make sandbox-qemu); \"\" runs the system's qemu-system-x86_64 (bookworm's QEMU 7.2, slower under nested I/O)")
	fs.StringVar(&o.kernelTree, "kernel-tree", filepath.Join(home, ".cache/govmm/kernel-std"), "unpacked Debian linux-image package for the sandbox (boot/vmlinuz-*, lib/modules/*)")
	fs.StringVar(&o.busybox, "busybox", "/bin/busybox", "static busybox (Debian busybox-static)")
	fs.StringVar(&o.cacheDir, "cache", filepath.Join(home, ".cache/govmm/sandbox"), "where the sandbox's initramfs is cached")
	fs.StringVar(&o.kvmAMD, "kvm-amd", "", "kvm-amd module parameters in the sandbox, space-separated")
	fs.IntVar(&o.memoryMiB, "memory", 6144, "sandbox RAM in MiB")
	fs.IntVar(&o.cpus, "cpus", 2, "sandbox vCPUs")
	fs.IntVar(&o.logLevel, "kernel-loglevel", 2, "the sandbox kernel's console loglevel (2: panics, oopses and lockups; 8: everything)")
	fs.IntVar(&o.retries, "retries", 1, "run the command again this many times if the sandbox's kernel dies under it (never with -interactive)")
	fs.DurationVar(&o.timeout, "timeout", 25*time.Minute, "kill the sandbox after this long, retries included")
	fs.BoolVar(&o.interactive, "interactive", false, "give the command this terminal (for demos)")
	fs.StringVar(&o.disk, "disk", "", "a raw image the sandbox sees as its /dev/vda (virtio-blk; the ext2/ext4 modules are loaded to mount it): what the sandbox wrote to it is in the file when the sandbox ends, what it only cached is not")
	fs.BoolVar(&o.powerSwitch, "power-switch", false, fmt.Sprintf("let the command cut the sandbox's power, as a pulled plug: writing the byte 1 to I/O port %#x (/dev/port) stops the sandbox at once and it exits with status %d", powerSwitchPort, exitPowerCut))
	fs.Var((*envList)(&o.env), "env", "pass this environment variable into the sandbox (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.command = fs.Args()
	if o.interactive {
		o.retries = 0
	}
	if len(o.command) == 0 {
		return nil, errors.New("no command: usage: sandbox [flags] -- COMMAND [ARGS...]")
	}
	return o, nil
}

func run(o *options, deadline time.Time) (int, error) {
	qemu, qemuDirs, err := findQEMU(o.qemuTree)
	if err != nil {
		return 0, err
	}
	kernel, err := findKernel(o.kernelTree)
	if err != nil {
		return 0, err
	}
	initrd, err := buildInitramfs(o)
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "govmm-sandbox-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := writeRunScript(dir, o); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, stall := context.WithCancelCause(ctx)
	defer stall(nil)
	go watchHeartbeat(ctx, filepath.Join(dir, "heartbeat"), stall)
	cmd := exec.CommandContext(ctx, qemu, append(qemuDirs, qemuArgs(o, kernel, initrd, dir)...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if !o.interactive {
		cmd.Stdin = nil
	}
	start := time.Now()
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		var ee *exec.ExitError
		if o.powerSwitch && errors.As(err, &ee) && ee.ExitCode() == powerCutQEMUStatus {
			fmt.Fprintf(os.Stderr, "sandbox: the command cut the sandbox's power after %v\n", time.Since(start).Round(time.Second))
			return exitPowerCut, nil
		}
		return 0, fmt.Errorf("%s: %w", qemu, err)
	}
	if errors.Is(context.Cause(ctx), errStalled) {
		return 0, fmt.Errorf("%w: %v after %v", errSandboxDied, errStalled, time.Since(start).Round(time.Second))
	}
	if ctx.Err() != nil {
		return 0, fmt.Errorf("stopped after %v: %v", time.Since(start).Round(time.Second), context.Cause(ctx))
	}
	return readStatus(dir)
}

// stallLimit is how long the sandbox's heartbeat may stay silent: it beats
// every 5 s, and even a loaded sandbox runs a shell loop within a minute.
const stallLimit = 2 * time.Minute

// errStalled: every CPU of the sandbox stopped running its kernel (seen: both
// stuck in the emulated guest, taking no interrupt, so no watchdog fires).
var errStalled = fmt.Errorf("the sandbox's kernel stopped running (no heartbeat for %v)", stallLimit)

// watchHeartbeat cancels ctx with errStalled once the heartbeat file, after
// its first beat, goes unmodified for stallLimit.
func watchHeartbeat(ctx context.Context, path string, stall context.CancelCauseFunc) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st, err := os.Stat(path)
		if err != nil {
			continue // not started yet
		}
		if time.Since(st.ModTime()) > stallLimit {
			stall(errStalled)
			return
		}
	}
}

func findKernel(tree string) (string, error) {
	matches, err := filepath.Glob(filepath.Join(tree, "boot", "vmlinuz-*"))
	if err != nil || len(matches) == 0 {
		return "", fmt.Errorf("no sandbox kernel in %s/boot: run `make sandbox-kernel` (it unpacks Debian's linux-image-amd64)", tree)
	}
	return matches[len(matches)-1], nil
}

// qemuArgs is the L1 machine: TCG with a CPU that has SVM, no network card
// (tests build their own networks inside), the host's / over 9p.
func qemuArgs(o *options, kernel, initrd, dir string) []string {
	console := "stdio,id=con,signal=on"
	if o.interactive {
		// Ctrl-A and Ctrl-C belong to the program in the sandbox.
		console = "stdio,id=con,mux=off,signal=off"
	}
	args := []string{
		"-accel", "tcg,thread=multi", "-cpu", "max", "-smp", strconv.Itoa(o.cpus), "-m", strconv.Itoa(o.memoryMiB),
		"-display", "none", "-nodefaults", "-no-user-config", "-no-reboot", "-nic", "none",
		"-chardev", console, "-serial", "chardev:con",
		"-kernel", kernel, "-initrd", initrd,
		"-append", fmt.Sprintf("console=ttyS0 quiet loglevel=%d panic=-1 panic_on_oops=1 softlockup_panic=1 govmm.sandbox=%s", o.logLevel, dir),
		"-virtfs", "local,path=/,mount_tag=host,security_model=none,multidevs=remap",
		// A triple fault of the sandbox's kernel ends QEMU (-no-reboot)
		// without a word on the console; this log says so.
		"-d", "guest_errors", "-D", qemuLog(dir),
	}
	if o.disk != "" {
		// QEMU keeps no cache of its own for a raw image: what the
		// sandbox wrote to its disk is in the file once QEMU is gone,
		// what it still held in its page cache is lost, as a machine's
		// dirty pages are in a power cut. cache=writeback gives the
		// sandbox a volatile write cache to flush, as real disks have.
		args = append(args, "-drive", "file="+strings.ReplaceAll(o.disk, ",", ",,")+",if=virtio,format=raw,cache=writeback")
	}
	if o.powerSwitch {
		args = append(args, "-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=1", powerSwitchPort))
	}
	return args
}

// findQEMU returns the QEMU binary and the -L options for its firmware: from
// tree, an unpacked set of Debian packages, or the system's when tree is "".
func findQEMU(tree string) (string, []string, error) {
	if tree == "" {
		q, err := exec.LookPath("qemu-system-x86_64")
		if err != nil {
			return "", nil, fmt.Errorf("%w (install it with: apt-get install qemu-system-x86)", err)
		}
		return q, nil, nil
	}
	q := filepath.Join(tree, "usr/bin/qemu-system-x86_64")
	if _, err := os.Stat(q); err != nil {
		return "", nil, fmt.Errorf("no sandbox QEMU: %w (unpack it with: tests/fetch-qemu.sh %s, or make sandbox-qemu)", err, tree)
	}
	// Its own firmware first: the system's may be older or missing.
	return q, []string{"-L", filepath.Join(tree, "usr/share/qemu"), "-L", filepath.Join(tree, "usr/share/seabios")}, nil
}

// readStatus returns the command's exit status that the sandbox's init wrote.
func readStatus(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		diag, _ := os.ReadFile(filepath.Join(dir, "diagnosis"))
		msg := strings.TrimSpace(string(diag) + " (no exit status written)")
		if log, _ := os.ReadFile(qemuLog(dir)); len(log) > 0 {
			msg += "\nQEMU's log of the sandbox (-d guest_errors), last lines:\n" + lastLines(string(log), 20)
		}
		return 0, fmt.Errorf("%w: %s", errSandboxDied, msg)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func qemuLog(dir string) string { return filepath.Join(dir, "qemu.log") }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
