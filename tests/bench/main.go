// Command bench boots one kernel and initramfs with govmm and with three QEMU
// configurations, interleaved, and prints a table of what each costs to reach
// the guest's init: wall time, guest uptime, VMM memory and CPU, KVM exits.
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
	"strings"
	"time"

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
	results, failed := runAll(cfg, os.Stderr)
	printTable(os.Stdout, results, cfg.runs)
	printTargets(os.Stdout, results)
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d of %d boots failed (see above)\n", failed, cfg.runs*len(results))
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&c.runs, "runs", 5, "boots per system")
	fs.StringVar(&c.govmm, "govmm", "bin/govmm", "govmm `binary`")
	fs.StringVar(&c.qemu, "qemu", "qemu-system-x86_64", "QEMU `binary`")
	fs.StringVar(&c.kernel, "kernel", "", "guest bzImage (required)")
	fs.StringVar(&c.initrd, "initrd", "", "guest initramfs with govmm's init (required)")
	fs.StringVar(&c.memory, "memory", "256M", "guest RAM, a whole number of MiB")
	fs.IntVar(&c.cpus, "cpus", 1, "vCPUs")
	fs.DurationVar(&c.timeout, "timeout", 120*time.Second, "kill a boot that has not ended after this long")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q: bench takes only flags", fs.Arg(0))
	case c.kernel == "" || c.initrd == "":
		return nil, errors.New("-kernel and -initrd are required (make kernel initramfs builds them)")
	case c.runs < 1 || c.cpus < 1:
		return nil, errors.New("-runs and -cpus must be at least 1")
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
	systems := allSystems()
	results := make([]result, len(systems))
	failed := 0
	for i, s := range systems {
		results[i].name = s.name
	}
	for run := 1; run <= c.runs; run++ {
		for i, s := range systems {
			smp, err := boot(c, s)
			if err != nil {
				failed++
				fmt.Fprintf(log, "bench: run %d/%d %s: FAILED: %v\n", run, c.runs, s.name, err)
				continue
			}
			results[i].samples = append(results[i].samples, smp)
			fmt.Fprintf(log, "bench: run %d/%d %s: init %.2f s, exit %.2f s, %d exits, RSS excl. RAM %.1f MiB\n",
				run, c.runs, s.name, smp.toInit.Seconds(), smp.toExit.Seconds(), smp.exits["exits"], mib(smp.overhead()))
		}
	}
	return results, failed
}
