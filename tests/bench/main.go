// Command bench boots one kernel and initramfs with govmm and with three QEMU
// configurations, interleaved, and prints a table of what each costs to reach
// the guest's init: wall time, guest uptime, VMM memory and CPU, KVM exits.
// Then it boots govmm and QEMU with a virtio disk and NIC and prints a
// second table: disk and TCP throughput, IOPS, latency, and KVM exits and
// VMM CPU time per MiB moved.
// It checks the targets but does not fail on them: only a failed boot
// makes it exit non-zero.
//
//	bench -runs 5 -govmm bin/govmm -kernel vmlinuz -initrd initramfs.cpio.gz
//
// It needs /dev/kvm; `make bench` runs it inside the nested-KVM sandbox when
// this machine has none.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	linuxboot "github.com/govmm/govmm/boot" // boot is this program's own
	"github.com/govmm/govmm/memory"
)

// guestCmdline is the same for every system. govmm.hold keeps the guest at
// init long enough to snapshot statistics and RSS there.
const guestCmdline = "console=ttyS0 reboot=k,panic_warm panic=-1 quiet govmm.hold=3000"

type config struct {
	runs     int
	govmm    string
	qemu     string
	kernel   string
	initrd   string
	memory   string
	memBytes uint64
	cpus     int
	timeout  time.Duration

	systems string // comma-separated names to run; empty: all
	// vmlinux is the kernel's ELF vmlinux, extracted from it for the PVH
	// systems; "" when it cannot be, and they are left out.
	vmlinux string

	// The I/O benchmark; ioRuns 0 skips it.
	ioRuns, ioMiB, ioOps, ioDepth, ioEchoes int
	exitDetail                              bool // print KVM's statistics per MiB for each phase
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	if err := preflight(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	cleanup := extractVmlinux(cfg, os.Stderr)
	defer cleanup()
	failed := 0
	if cfg.runs > 0 {
		var results []result
		results, failed = runAll(cfg, os.Stderr)
		printTable(os.Stdout, results, cfg.runs)
		printTargets(os.Stdout, results)
		if failed > 0 {
			fmt.Fprintf(os.Stderr, "bench: %d of %d boots failed (see above)\n", failed, cfg.runs*len(results))
		}
	}
	ioMissing := 0
	if cfg.ioRuns > 0 {
		ioResults, n, missing, err := runIO(cfg, os.Stderr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: I/O benchmark: %v\n", err)
			os.Exit(1)
		}
		ioMissing = missing
		fmt.Println()
		printIOTable(os.Stdout, cfg, ioResults)
		printIOTargets(os.Stdout, cfg, ioResults)
		if cfg.exitDetail {
			printExitDetail(os.Stdout, cfg, ioResults)
		}
		if n > 0 {
			fmt.Fprintf(os.Stderr, "bench: %d I/O boots failed (see above); %d of %d runs have no sample after a retry\n",
				n, missing, cfg.ioRuns*len(ioResults))
		}
	}
	if failed+ioMissing > 0 {
		cleanup()
		os.Exit(1)
	}
}

// extractVmlinux takes the bzImage's vmlinux out once, before any boot is
// timed, so that the PVH systems measure the boot and not the extraction
// (which govmm run --boot pvh does once per bzImage, then caches).
func extractVmlinux(c *config, log io.Writer) func() {
	dir, err := os.MkdirTemp("", "bench-vmlinux-")
	if err != nil {
		fmt.Fprintf(log, "bench: PVH systems left out: %v\n", err)
		return func() {}
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := extractTo(c.kernel, filepath.Join(dir, "vmlinux")); err != nil {
		fmt.Fprintf(log, "bench: PVH systems left out: %v\n", err)
		return cleanup
	}
	c.vmlinux = filepath.Join(dir, "vmlinux")
	return cleanup
}

func extractTo(bzImage, path string) error {
	in, err := os.Open(bzImage)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	k, err := linuxboot.ReadKernel(io.NewSectionReader(in, 0, st.Size()))
	if err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := k.ExtractVmlinux(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&c.runs, "runs", 5, "boots per system (0 skips the boot benchmark)")
	fs.StringVar(&c.systems, "systems", "", "run only these systems, comma-separated (e.g. govmm,\"qemu pc -nodefaults\"); govmm must be one")
	fs.StringVar(&c.govmm, "govmm", "bin/govmm", "govmm `binary`")
	fs.StringVar(&c.qemu, "qemu", "qemu-system-x86_64", "QEMU `binary`")
	fs.StringVar(&c.kernel, "kernel", "", "guest bzImage (required)")
	fs.StringVar(&c.initrd, "initrd", "", "guest initramfs with govmm's init (required)")
	fs.StringVar(&c.memory, "memory", "256M", "guest RAM, a whole number of MiB")
	fs.IntVar(&c.cpus, "cpus", 1, "vCPUs")
	fs.DurationVar(&c.timeout, "timeout", 120*time.Second, "kill a boot that has not ended after this long")
	fs.IntVar(&c.ioRuns, "io-runs", 3, "I/O benchmark runs per system (0 skips it)")
	fs.IntVar(&c.ioMiB, "io-mib", 64, "MiB moved by each sequential disk and TCP phase, and the disk image's size")
	fs.IntVar(&c.ioOps, "io-ops", 4000, "4 KiB random reads")
	fs.IntVar(&c.ioDepth, "io-depth", 8, "random reads in flight at once")
	fs.IntVar(&c.ioEchoes, "io-echoes", 1000, "TCP 1-byte round trips for the latency phase")
	fs.BoolVar(&c.exitDetail, "exit-detail", false, "also print, per MiB of each throughput phase, each KVM vCPU statistic and each govmm virtqueue count (kicks, chains, interrupts): which exits differ, and why")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q: bench takes only flags", fs.Arg(0))
	case c.kernel == "" || c.initrd == "":
		return nil, errors.New("-kernel and -initrd are required (make kernel initramfs builds them)")
	case c.runs < 0 || c.cpus < 1:
		return nil, errors.New("-runs must be 0 or more and -cpus at least 1")
	case c.ioRuns < 0 || c.ioMiB < 1 || c.ioMiB > 4096 || c.ioOps < 1 || c.ioEchoes < 1:
		return nil, errors.New("-io-runs must be 0 or more, -io-mib 1 to 4096, -io-ops and -io-echoes at least 1")
	case c.ioDepth < 1 || c.ioDepth > 256:
		return nil, errors.New("-io-depth must be 1 to 256")
	}
	if c.systems != "" && !slices.Contains(strings.Split(c.systems, ","), "govmm") {
		return nil, errors.New("-systems must include govmm: every table compares against it")
	}
	size, err := memory.ParseSize(c.memory)
	if err != nil {
		return nil, fmt.Errorf("-memory: %w", err)
	}
	if size == 0 || size%(1<<20) != 0 {
		return nil, fmt.Errorf("-memory %s: give a whole number of MiB, as QEMU's -m wants", c.memory)
	}
	c.memBytes = size
	return c, nil
}

// preflight names what is missing before any boot is tried.
func preflight(c *config) error {
	for _, f := range []string{c.govmm, c.kernel, c.initrd} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w (make build kernel initramfs provides it)", err)
		}
	}
	path, err := exec.LookPath(c.qemu)
	if err != nil {
		return fmt.Errorf("%w: install Debian's qemu-system-x86 (make deps)", err)
	}
	c.qemu = path
	const viaMake = "run the benchmark through `make bench`, which uses the nested-KVM sandbox on machines without a usable KVM"
	kvm, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("no usable KVM: %w; %s", err, viaMake)
	}
	if err := kvm.Close(); err != nil {
		return err
	}
	// A paravirtual KVM (kvm_pvm) opens fine but never boots a kernel;
	// kvmprobe, built beside govmm by `make build`, tells it apart.
	probe := filepath.Join(filepath.Dir(c.govmm), "kvmprobe")
	if _, err := os.Stat(probe); err != nil {
		return nil
	}
	if out, err := exec.Command(probe).CombinedOutput(); err != nil {
		return fmt.Errorf("%s (%w); %s", strings.TrimSpace(string(out)), err, viaMake)
	}
	return nil
}

// runAll boots every system once per round so that drift in the machine's
// load spreads over all of them.
func runAll(c *config, log io.Writer) ([]result, int) {
	systems := selected(c, allSystems())
	if c.vmlinux == "" {
		systems = slices.DeleteFunc(systems, func(s system) bool { return s.pvh })
	}
	results := make([]result, len(systems))
	failed := 0
	for i, s := range systems {
		results[i].name, results[i].qemu = s.name, s.isQEMU()
	}
	for run := 1; run <= c.runs; run++ {
		for i, s := range systems {
			smp, err := boot(c, s)
			if err != nil {
				failed++
				fmt.Fprintf(log, "bench: run %d/%d %s: FAILED: %v\n", run, c.runs, s.name, err)
				continue
			}
			smp.round = run
			results[i].samples = append(results[i].samples, smp)
			fmt.Fprintf(log, "bench: run %d/%d %s: init %.2f s, exit %.2f s, %d exits, RSS excl. RAM %.1f MiB\n",
				run, c.runs, s.name, smp.toInit.Seconds(), smp.toExit.Seconds(), smp.exits["exits"], mib(smp.overhead()))
		}
	}
	return results, failed
}
