package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/govmm/govmm"
)

const runHelp = `Usage: govmm run --kernel KERNEL [flags]
       govmm run --bundle DIR [flags]

Boots KERNEL in a microVM with its serial console (COM1, the guest's ttyS0)
on this terminal, and exits when the guest powers off. KERNEL is a bzImage
(/boot/vmlinuz-*) or an uncompressed ELF vmlinux with a PVH entry point
(Linux built with CONFIG_PVH=y, as Debian's kernels are).

When standard input is a terminal it is put in raw mode: everything you type
goes to the guest, Ctrl-C included. Type Ctrl-A x to stop the VM, Ctrl-A a to
send a literal Ctrl-A, Ctrl-A h for help. When standard input is not a
terminal it is passed through as is, so scripts can drive and capture the
console.

Flags:
%s
Exit status:
  0  the guest powered off
  1  govmm failed (the message says why and what to do)
  2  bad command line or configuration (a missing or wrong file, too little
     memory, ...): nothing was started
  3  the guest rebooted or reset
  4  the guest crashed: kernel panic (needs reboot=k,panic_warm panic=-1 on the
     command line, as in the default), triple fault, or KVM emulation failure
  5  stopped from the host: Ctrl-A x, SIGINT or SIGTERM

Boot paths (--boot): a bzImage is entered at its 64-bit entry (bzimage):
the guest's own decompressor unpacks the kernel and moves it to a random
place (KASLR) before Linux starts. pvh skips that work: govmm extracts the
bzImage's vmlinux on the host (gzip, bzip2, LZ4 as Debian's cloud kernel
has, LZMA, LZO, XZ as its standard kernel has, or ZSTD; once, then kept
under ~/.cache/govmm/vmlinux by the bzImage's hash) or
takes an ELF vmlinux as it is, and enters it through PVH. The kernel then
runs where it was linked: the guest loses the decompressor's physical and
virtual randomisation of the kernel image (KASLR of modules and memory
stays). auto, the default, boots an ELF vmlinux through PVH and a bzImage
at its own entry.

A guest that hangs: send govmm SIGQUIT (kill -QUIT PID). It prints where each
vCPU is (registers, halted or running, interrupts pending in its local APIC)
and every goroutine's stack to standard error, then exits with status 2.

Security: once the VM is built (files, taps, guest RAM, every vCPU), govmm
drops every capability and, before the guest's first instruction, installs
a seccomp filter on all its threads: from then on it may only do what a
running VM does (read and write the fds it holds, run its vCPUs, rewire the
guest's interrupts, what the Go runtime needs); no exec, new process,
socket or open (except to write --stats). A forbidden call stops govmm at
once, exit status 1 (125 with --bundle), with a line naming the call: a
bug in govmm or a guest exploiting one, please report it. --seccomp=off
leaves the filter out, for debugging only. Without root: be in the group
that owns /dev/kvm and have root make your taps (ip tuntap add NAME mode tap
user $USER). --jail DIR --uid N --gid N, as root, runs the VM's govmm
chrooted into DIR, in new mount, PID and IPC namespaces, as N:N with no
other group: DIR holds what the VM uses (every path given is inside it),
and govmm makes DIR/dev/kvm and DIR/dev/net/tun for that user and copies
itself to DIR/govmm; the tap must exist, made for user N.

Devices: every guest gets a virtio-rng. --disk and --net add virtio-blk and
virtio-net devices on PCI; the guest kernel needs the virtio_pci, virtio_blk
and virtio_net drivers (modules in distribution kernels: load them from the
initramfs). Disks appear as /dev/vda, /dev/vdb, ... in flag order; NICs as
eth0, eth1, ... A tap that does not exist is created (CAP_NET_ADMIN); to run
without privileges, create it first: ip tuntap add tap0 mode tap user $USER.
A disk's reads and writes go through io_uring (aio=auto, the default),
except for an image on tmpfs, which is copied inline; aio=blocking makes
blocking system calls instead, as aio=auto does where the kernel cannot
restrict a ring to the image (before Linux 5.10) or io_uring is disabled.
aio=io_uring there is an error.

Containers: --bundle DIR runs an OCI runtime bundle's process (as runc run
-b DIR does) in a microVM booted from govmm's guest kernel and initramfs
(by default the Debian cloud kernel and initramfs that make fetched into
$GOVMM_CACHE or ~/.cache/govmm). The bundle is never modified: its root
file system reaches the guest as a read-only ext4 image, built once with
mke2fs -d and cached until the tree changes, under a tmpfs overlay unless
root.readonly is true. The process gets process.args, env, cwd, user,
rlimits and hostname, and the spec's proc, sysfs, tmpfs, devpts and
mqueue mounts; a mount of a host block device (or image file) with its
file system type, e.g. ext4 on /dev/loop0, becomes a virtio disk that the
guest mounts in its place. The network is the VM's own: --net
tap=NAME,ip=ADDR/PREFIX gives the process a NIC with that address (lo is
always up). What a VM cannot honour (host bind mounts, cgroup paths,
seccomp, capabilities, ...) is listed on standard error. Its stdout and
stderr arrive on govmm's, apart and without the guest kernel's messages;
standard input is passed through; with process.terminal and a terminal on
standard input the process gets a tty (Ctrl-A x stops the VM). Guest RAM
and vCPUs come from linux.resources (memory limit; CPU quota/period or
cpuset) where set, from --memory and --cpus otherwise. SIGINT, SIGTERM and
SIGHUP go to the process; the VM stops 10 s after the first if it has not
exited. The process's stdio, status and signals travel over three
virtio-console ports (the guest's hvc0-hvc2) with a line protocol a later
guest agent can extend.

Exit status with --bundle, as with runc run and docker run: the process's
own, 128+N if signal N killed it, and
  124  the VM ended before the process: guest crash, reboot, or stopped from
       the host (the guest console's last lines are printed)
  125  govmm could not run the bundle (the message says why and what to do)
  126  the process's executable could not be run
  127  the process's executable does not exist

Examples:
  govmm run --kernel /boot/vmlinuz-$(uname -r) --initrd initrd.img --memory 1G --cpus 2
  govmm run --kernel vmlinuz --initrd initrd.img --disk path=rootfs.img \
      --net tap=tap0,mac=52:54:00:12:34:56 --cmdline "console=ttyS0 root=/dev/vda"
  runc spec && govmm run --bundle . --memory 256M
`

type runFlags struct {
	cfg    govmm.Config
	memory string
	disks  []string
	nets   []string
	// nicAddrs are --net's ip= values, one per NIC (zero when not given).
	nicAddrs []netip.Prefix
	console  string
	bootPath string
	// cmdlineSet: --cmdline was given, so --console does not change it.
	cmdlineSet bool
	statsPath  string
	debug      bool
	bundle     string
	rootImage  string
	seccomp    string
	// jail, uid and gid: --jail runs govmm again inside the jail.
	jail           string
	uid, gid       uint32
	uidSet, gidSet bool
}

func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	f := &runFlags{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.cfg.Kernel, "kernel", "", "Linux kernel `BZIMAGE` to boot (required without --bundle)")
	fs.StringVar(&f.cfg.Initrd, "initrd", "", "initramfs `FILE` handed to the kernel")
	fs.StringVar(&f.cfg.Cmdline, "cmdline", govmm.DefaultCmdline, "kernel command line (with --console virtio the default adds console=hvc0)")
	fs.StringVar(&f.memory, "memory", "512M", "guest RAM, e.g. 256M or 4G (K, M, G suffixes are powers of 1024)")
	fs.IntVar(&f.cfg.CPUs, "cpus", govmm.DefaultCPUs, "number of vCPUs")
	fs.StringArrayVar(&f.disks, "disk", nil, "attach a raw image or a block device as a virtio disk, `SPEC` being path=FILE[,ro][,serial=ID][,aio=auto|io_uring|blocking]; repeat for more")
	fs.StringArrayVar(&f.nets, "net", nil, "attach a virtio NIC on a tap device, `SPEC` being tap=NAME[,mac=MAC][,ip=ADDR/PREFIX] (ip= only with --bundle: the guest gives the NIC that address before the process starts); repeat for more")
	fs.StringVar(&f.bootPath, "boot", "auto", "how the kernel is entered: bzimage (its own entry and decompressor), pvh (PVH entry, a bzImage's vmlinux extracted on the host: faster, no kernel-image KASLR) or auto (pvh for an ELF vmlinux, bzimage for a bzImage); see Boot paths below")
	fs.StringVar(&f.console, "console", "serial", "guest console: serial (COM1, the guest's ttyS0) or virtio (virtio-console, hvc0)")
	fs.StringVar(&f.cfg.KVMDevice, "kvm", govmm.DefaultKVMDevice, "KVM device `PATH`")
	fs.StringVar(&f.statsPath, "stats", "", "write KVM exit statistics and each virtqueue's kicks, chains and interrupts as JSON to `FILE` when the VM ends, and on SIGUSR1 while it runs; with --bundle also the start's timeline (bundle_start: when init said ready, the process started and its first output came, on the host's clock and the guest's)")
	fs.BoolVar(&f.debug, "debug", false, "report guest accesses to ports and addresses that have no device")
	fs.StringVar(&f.rootImage, "root-image", "", "with --bundle: boot the process's root from `FILE`, an ext4 image of the bundle's root file system made beforehand (e.g. by mke2fs -d), instead of the cached image govmm builds and re-checks against the tree at each start; govmm does not compare FILE with the tree")
	fs.StringVar(&f.seccomp, "seccomp", "on", "on: once the VM is built, govmm allows itself only the system calls a running VM makes, and stops at once, naming the call, if it makes another (see Security below); off: no filter, for debugging only: unsafe, a guest that exploits a bug in govmm then reaches every system call of this process")
	fs.StringVar(&f.jail, "jail", "", "run the VM's govmm chrooted into `DIR`, in new mount, PID and IPC namespaces, as --uid and --gid, with every path (--kernel, --initrd, --disk, --stats) inside DIR; needs root; see Security below")
	fs.Uint32Var(&f.uid, "uid", 0, "with --jail: the user `ID` govmm runs as in the jail")
	fs.Uint32Var(&f.gid, "gid", 0, "with --jail: the group `ID` govmm runs as in the jail")
	fs.StringVar(&f.bundle, "bundle", "", "run the process of the OCI runtime bundle `DIR` (config.json and its root file system, as runc run takes it) in the microVM; see Containers below")
	fs.Usage = func() { fmt.Fprintf(stderr, runHelp, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	f.cmdlineSet = fs.Changed("cmdline")
	f.uidSet, f.gidSet = fs.Changed("uid"), fs.Changed("gid")
	if (f.uidSet || f.gidSet) && f.jail == "" {
		return nil, errors.New("--uid and --gid are the jail's user: give --jail too (without it, run govmm as that user)")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: run takes only flags (quote a --cmdline with spaces)", fs.Arg(0))
	}
	if f.bundle != "" {
		if err := bundleDefaults(f); err != nil {
			return nil, err
		}
	} else if f.rootImage != "" {
		return nil, errors.New("--root-image is the root of a --bundle's process: give --bundle too")
	}
	if f.cfg.Kernel == "" {
		return nil, errors.New("--kernel is required: the path of a bzImage, e.g. --kernel /boot/vmlinuz-$(uname -r)")
	}
	if f.cfg.CPUs < 1 {
		// The library reads 0 as "default"; on the command line it is a mistake.
		return nil, fmt.Errorf("--cpus %d: give at least 1 vCPU", f.cfg.CPUs)
	}
	size, err := govmm.ParseSize(f.memory)
	if err != nil {
		return nil, fmt.Errorf("--memory: %w", err)
	}
	if f.statsPath != "" && f.jail == "" { // a jail's is checked inside it
		if err := checkStatsPath(f.statsPath); err != nil {
			return nil, err
		}
	}
	if size == 0 { // as with --cpus: the library's "default", a mistake here
		return nil, fmt.Errorf("--memory %s: give a size of at least 16M, e.g. 512M", f.memory)
	}
	f.cfg.Memory = size
	if f.seccomp != "on" && f.seccomp != "off" {
		return nil, fmt.Errorf("--seccomp %q: give on (the default) or off", f.seccomp)
	}
	return f, f.parseDevices()
}

// terminalIoctls are the requests govmm makes on a terminal while the VM
// runs: reading and restoring its mode, and its size for a --bundle tty.
var terminalIoctls = []uint64{unix.TCGETS, unix.TCSETS, unix.TIOCGWINSZ}

// confinement is what govmm keeps of its privileges once the VM is built;
// killStatus is the exit status if it breaks its own filter.
func (f *runFlags) confinement(stderr io.Writer, killStatus int) *govmm.Confinement {
	if f.seccomp == "off" {
		fmt.Fprintln(stderr, "govmm: warning: --seccomp=off is unsafe: no system call filter; a guest that exploits a bug in govmm reaches every system call of this process (use it for debugging only)")
	}
	return &govmm.Confinement{
		NoSeccomp:  f.seccomp == "off",
		Files:      f.statsPath != "",
		Ioctls:     terminalIoctls,
		KillStatus: killStatus,
	}
}

// checkStatsPath refuses, before the VM starts, a --stats file that could
// not be written when it ends: the run's figures would be lost.
func checkStatsPath(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("--stats %s is a directory: give a file name", path)
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--stats %s: directory %s does not exist: create it first", path, dir)
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("--stats %s: cannot write in %s: %v", path, dir, err)
	}
	return nil
}

func (f *runFlags) parseDevices() error {
	for _, s := range f.disks {
		d, err := parseDisk(s)
		if err != nil {
			return err
		}
		f.cfg.Disks = append(f.cfg.Disks, d)
	}
	for _, s := range f.nets {
		n, addr, err := parseNIC(s)
		if err != nil {
			return err
		}
		if addr.IsValid() && f.bundle == "" {
			return fmt.Errorf("--net %q: ip= configures the NIC for a --bundle process; without --bundle the guest configures its own network", s)
		}
		f.cfg.NICs = append(f.cfg.NICs, n)
		f.nicAddrs = append(f.nicAddrs, addr)
	}
	boot, err := parseBoot(f.bootPath)
	if err != nil {
		return err
	}
	f.cfg.Boot = boot
	f.cfg.KernelCache = filepath.Join(cacheDir(), "vmlinux")
	kind, err := parseConsole(f.console)
	f.cfg.ConsoleDevice = kind
	if kind == govmm.VirtioConsole && !f.cmdlineSet {
		f.cfg.Cmdline = govmm.DefaultVirtioConsoleCmdline
	}
	return err
}

func runCommand(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	f, err := parseRunFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "govmm: %v\nRun 'govmm run --help' for usage.\n", err)
		return exitUsage
	}
	if err := hardenProcess(); errors.Is(err, errOneThread) {
		fmt.Fprintf(stderr, "govmm: warning: %v\n", err)
	} else if err != nil {
		fmt.Fprintf(stderr, "govmm: %v\n", err)
		return exitError
	}
	if f.jail != "" {
		return runJailed(f, args, stdin, stdout, stderr)
	}
	if f.bundle != "" {
		return runBundle(f, stdin, stdout, stderr)
	}
	f.cfg.Console = stdout
	f.cfg.Confine = f.confinement(stderr, exitError)
	vm, err := govmm.New(f.cfg)
	if errors.Is(err, govmm.ErrInvalidConfig) {
		fmt.Fprintf(stderr, "govmm: %v\nRun 'govmm run --help' for usage.\n", err)
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "govmm: %v\n", err)
		return exitError
	}
	warnHugePages(stderr, vm.HugePages())
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		if s, ok := <-sigs; ok {
			cancel(fmt.Errorf("received %v", s))
		}
	}()
	if f.statsPath != "" {
		defer statsOnSIGUSR1(stderr, func() error { return writeRunningStats(f.statsPath, vm) })()
	}
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGQUIT)
	go func() {
		<-quit
		printVCPUs(stderr, vm)
		// The Go runtime's own SIGQUIT: every goroutine's stack, exit 2.
		signal.Reset(syscall.SIGQUIT)
		syscall.Kill(os.Getpid(), syscall.SIGQUIT) //nolint:errcheck // cannot fail on ourselves
	}()
	con, err := startConsole(stdin, stderr, vm.ConsoleInput, func() { cancel(errors.New("Ctrl-A x typed")) })
	if err != nil {
		vm.Close()
		fmt.Fprintf(stderr, "govmm: %v\n", err)
		return exitError
	}
	res, runErr := vm.Run(ctx)
	con.restore()
	return report(res, runErr, f, stderr)
}

// warnHugePages says in one line that guest RAM is on small pages, which
// costs the guest speed but not correctness.
func warnHugePages(w io.Writer, err error) {
	if err != nil {
		fmt.Fprintf(w, "govmm: warning: guest RAM is on 4 KiB pages, so the guest runs slower: %v\n", err)
	}
}

// vcpuWait bounds how long SIGQUIT waits for a vCPU to leave KVM_RUN.
const vcpuWait = 5 * time.Second

// printVCPUs writes where each vCPU is. A CR3 outside guest RAM with paging
// on means the vCPU's state was lost below govmm: seen under nested KVM, when
// the outer hypervisor hands back its own registers for the guest's.
func printVCPUs(w io.Writer, vm *govmm.VM) {
	ctx, cancel := context.WithTimeout(context.Background(), vcpuWait)
	defer cancel()
	snaps, err := vm.VCPUSnapshots(ctx)
	for _, s := range snaps {
		fmt.Fprintf(w, "govmm: %v\n", s)
		if s.CR0&cr0Paging != 0 && !vm.InRAM(s.CR3&^0xfff, 4096) {
			fmt.Fprintf(w, "govmm: vCPU %d: cr3 %#x is outside guest RAM: no guest kernel runs like this (seen under nested KVM, when the outer hypervisor loses the guest's registers)\n", s.ID, s.CR3)
		}
	}
	if err != nil {
		fmt.Fprintf(w, "govmm: vCPU state: %v\n", err)
	}
}

// cr0Paging is CR0.PG: CR3 points at page tables only when it is set.
const cr0Paging = 1 << 31

// report prints how the VM ended and picks the exit status.
func report(res govmm.Result, runErr error, f *runFlags, stderr io.Writer) int {
	if f.statsPath != "" {
		if err := writeStats(f.statsPath, res); err != nil {
			fmt.Fprintf(stderr, "govmm: %v\n", err)
		}
	}
	if f.debug {
		printUnhandled(stderr, res)
	}
	if res.ConsoleDropped > 0 {
		fmt.Fprintf(stderr, "govmm: %d bytes of console output were dropped: standard output did not take them in time (the guest never waits for it)\n", res.ConsoleDropped)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "govmm: %v\n", runErr)
		return exitError
	}
	switch res.Reason {
	case govmm.PoweredOff:
		return exitPoweredOff
	case govmm.Rebooted:
		fmt.Fprintf(stderr, "govmm: %s\n", res.Detail)
		return exitRebooted
	case govmm.Crashed:
		fmt.Fprintf(stderr, "govmm: guest crashed: %s\n", res.Detail)
		return exitCrashed
	case govmm.Stopped:
		fmt.Fprintf(stderr, "govmm: stopped: %s\n", res.Detail)
		return exitStopped
	}
	fmt.Fprintf(stderr, "govmm: VM ended for an unknown reason: %s\n", res.Detail)
	return exitError
}
