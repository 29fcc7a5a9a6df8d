// Package compare is `govmm compare`: it runs one OCI bundle under several
// runtimes, fresh instance by fresh instance, and prints side by side what
// a microVM costs over a container: start and teardown time, memory, CPU,
// system calls and density.
//
// Measuring (runtime.go, measure.go, procfs.go) is kept apart from the
// arithmetic (stats.go, report.go) and the presentation (table.go,
// export.go, plot.go, progress.go).
package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/govmm/govmm/cmd/govmm/internal/bundle"
)

const help = `Usage: govmm compare [flags]

Runs the same OCI bundle under several runtimes and prints a table side by
side: what a microVM (govmm) costs over a container (runc, crun). Every run
is a fresh instance; runs are interleaved across runtimes (A B C A B C ...)
so that drift on the host hits all alike. Each cell is the median (min–max)
of --runs; the ratio columns divide by runc's median.

Measures (--only, in this order):
  start     launch → first stdout line; launch → exit of true; teardown;
            govmm booted without a bundle to its init, the yardstick; and
            where govmm's start goes, from its --stats timeline: launch →
            the guest's clock starts, the kernel's boot to init, init's
            setup to the exec, the exec to the first output
  memory    one idle instance: host MemAvailable drop, PSS of its host
            processes, a container's cgroup charge, the VMM outside guest RAM
  cpu       a fixed CPU-bound job: wall and host CPU time
  syscalls  a job of a million tiny system calls: wall time
  density   1, 4 and 16 idle instances at once: MemAvailable drop, per
            instance, launch → all ready
  disk      fio on a scratch ext4 (on a loop device over a file in TMPDIR)
            that containers mount and VMs get as a virtio disk: sequential
            1 MiB writes and reads, random 4 KiB reads at depth 8, O_DIRECT;
            when the bundle has fio
  network   from the host to the instance over a veth pair into the
            containers' network namespace, or a tap with a virtio NIC for a
            VM: iperf3 TCP each way, ICMP echo round trips; when the bundle
            and the host have iperf3

Runtimes (--runtimes): govmm (this program's run --bundle); qemu, a classic
VM (QEMU's PC machine on KVM booting govmm's kernel, initramfs and root
image, the process run through the same agent ports); runc, crun, or any
runtime with runc's command line, by name or path.

VMs boot the bundle's root image, built or checked once before anything
is timed (govmm run --bundle --root-image).

A comparison takes minutes to hours. With --out (or --journal) each run is
kept in a journal the moment it ends; if the comparison dies part-way, the
same command resumes it where it stopped, and the journal is removed once
the report is written. A journal of other flags or another govmm build is
refused rather than mixed in.

Must run as root: containers need namespaces and cgroups, the memory
figures drop the page cache (/proc/sys/vm/drop_caches), and the disk and
network measures make a loop device, a network namespace, a veth pair and
a tap (names starting govmm-cmp and govmm-compare, removed at the end).

Flags:
%s`

// Options are the parsed flags.
type Options struct {
	Runs     int
	Only     []string
	Runtimes []string
	Bundle   string
	Govmm    string
	QEMU     string
	Kernel   string
	Initrd   string
	Memory   string
	JSON     string
	CSV      string
	Plot     string
	Out      string
	Journal  string
}

// cacheDir is govmm's: $GOVMM_CACHE, else the user's cache directory.
func cacheDir() string {
	if d := os.Getenv("GOVMM_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "govmm")
	}
	return filepath.Join(os.TempDir(), "govmm-cache")
}

// prepareImage builds the VMs' root image of the bundle, when a VM runs,
// before anything is timed, and gives it to the VM runtimes: a start then
// boots without the check of the tree a plain govmm run --bundle makes
// (55 ms for a 7,000-file tree on a host; minutes over the nested-KVM
// sandbox's 9p view of the host, which would swamp the boot). It returns
// a note saying so, with the time it took.
func prepareImage(rts []Runtime, dir string, stderr io.Writer) (string, error) {
	var vms []interface{ setRootImage(string) }
	for _, rt := range rts {
		if vm, ok := rt.(interface{ setRootImage(string) }); ok {
			vms = append(vms, vm)
		}
	}
	if len(vms) == 0 {
		return "", nil
	}
	b, err := bundle.Load(dir)
	if err != nil {
		return "", err
	}
	fmt.Fprintln(stderr, "govmm compare: the VMs' root image of the bundle (built once, then cached)")
	t0 := time.Now()
	image, err := b.RootImage(filepath.Join(cacheDir(), "bundles"))
	if err != nil {
		return "", err
	}
	for _, vm := range vms {
		vm.setRootImage(image)
	}
	return fmt.Sprintf("VMs boot the root image compare made ready once, in %.1f s (a build, or the check of the cached image against the tree that a plain govmm run --bundle makes at each start)", time.Since(t0).Seconds()), nil
}

var errHelp = errors.New("help")

// ParseFlags parses the command line; errors are usage errors.
func ParseFlags(args []string, stderr io.Writer) (*Options, error) {
	o := &Options{}
	fs := pflag.NewFlagSet("compare", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cache := cacheDir()
	fs.IntVar(&o.Runs, "runs", 5, "fresh instances per measure and runtime")
	fs.StringSliceVar(&o.Only, "only", nil, "measures to run, comma-separated: "+strings.Join(Groups, ","))
	fs.StringSliceVar(&o.Runtimes, "runtimes", []string{"govmm", "qemu", "runc", "crun"}, "runtimes to compare, comma-separated")
	fs.StringVar(&o.Bundle, "bundle", filepath.Join(cache, "compare-bundle"), "OCI bundle `DIR` (make compare-bundle builds the default)")
	fs.StringVar(&o.Govmm, "govmm", "", "govmm binary `PATH` (default: the govmm beside this program)")
	fs.StringVar(&o.QEMU, "qemu", "qemu-system-x86_64", "QEMU binary `PATH` of the qemu runtime")
	fs.StringVar(&o.Kernel, "kernel", filepath.Join(cache, "kernel-cloud", "vmlinuz"), "kernel for the VMs (govmm, qemu)")
	fs.StringVar(&o.Initrd, "initrd", filepath.Join(cache, "guest", "initramfs.cpio.gz"), "initramfs for the VMs (govmm, qemu)")
	fs.StringVar(&o.Memory, "memory", "256M", "guest RAM of the VMs (govmm, qemu)")
	fs.StringVar(&o.JSON, "json", "", "also write the report, raw samples included, as JSON to `FILE`")
	fs.StringVar(&o.CSV, "csv", "", "also write the summaries as CSV to `FILE`")
	fs.StringVar(&o.Plot, "plot", "", "also draw the medians, normalised to runc, to `FILE` (.svg or .png)")
	fs.StringVar(&o.Out, "out", "", "write compare.json, .csv, .svg and .png to `DIR`")
	fs.StringVar(&o.Journal, "journal", "", "keep each finished run in `FILE` and resume from it when run again with the same flags (default: DIR/compare.journal with --out)")
	h := fs.BoolP("help", "h", false, "show this help")
	err := fs.Parse(args)
	if err == nil && *h {
		fmt.Fprintf(stderr, help, fs.FlagUsages())
		return nil, errHelp
	}
	if err == nil {
		err = o.check(fs.Args())
	}
	if err != nil {
		fmt.Fprintf(stderr, "govmm compare: %v\nRun 'govmm compare --help' for usage.\n", err)
		return nil, err
	}
	return o, nil
}

func (o *Options) check(rest []string) error {
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	if o.Journal == "" && o.Out != "" {
		o.Journal = filepath.Join(o.Out, "compare.journal")
	}
	if o.Runs < 1 {
		return fmt.Errorf("--runs %d: need at least 1", o.Runs)
	}
	if len(o.Runtimes) == 0 {
		return fmt.Errorf("--runtimes: name at least one")
	}
	seen := map[string]bool{}
	for _, rt := range o.Runtimes {
		if rt == "" {
			return fmt.Errorf("--runtimes: empty name")
		}
		if seen[filepath.Base(rt)] {
			return fmt.Errorf("--runtimes: %s twice", rt)
		}
		seen[filepath.Base(rt)] = true
	}
	for _, g := range o.Only {
		if !slices.Contains(Groups, g) {
			return fmt.Errorf("--only: unknown measure %q (known: %s)", g, strings.Join(Groups, ","))
		}
	}
	if o.Plot != "" {
		if ext := strings.ToLower(filepath.Ext(o.Plot)); ext != ".svg" && ext != ".png" {
			return fmt.Errorf("--plot %s: the name must end in .svg or .png", o.Plot)
		}
	}
	return nil
}

// geteuid is swapped by tests.
var geteuid = os.Geteuid

// Main runs `govmm compare ARGS` and returns the exit status: 0 done, 1
// failed, 2 bad command line.
func Main(args []string, stdout, stderr io.Writer) int {
	o, err := ParseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if geteuid() != 0 {
		fmt.Fprintln(stderr, "govmm compare: must run as root: containers need namespaces and cgroups, and the memory figures drop the page cache (/proc/sys/vm/drop_caches)")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, stdout, stderr); err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted; the instances running were torn down")
		}
		fmt.Fprintln(stderr, "govmm compare:", err)
		return 1
	}
	return 0
}

func (o *Options) runtimes() ([]Runtime, error) {
	var rts []Runtime
	for _, name := range o.Runtimes {
		switch name {
		case "govmm":
			g := &Govmm{Path: o.Govmm, Kernel: o.Kernel, Initrd: o.Initrd, Memory: o.Memory}
			if g.Path == "" {
				// This program is govmm-compare, beside govmm.
				p, err := os.Executable()
				if err != nil {
					return nil, fmt.Errorf("runtime govmm: %v (pass --govmm)", err)
				}
				g.Path = filepath.Join(filepath.Dir(p), "govmm")
			}
			if _, err := os.Stat(g.Path); err != nil {
				return nil, fmt.Errorf("runtime govmm: --govmm %s: %v (make build, or pass --govmm)", g.Path, err)
			}
			if err := o.checkVM(name); err != nil {
				return nil, err
			}
			rts = append(rts, g)
		case "qemu":
			if err := o.checkVM(name); err != nil {
				return nil, err
			}
			q, err := NewQEMU(o.QEMU, o.Kernel, o.Initrd, o.Memory, filepath.Join(cacheDir(), "bundles"))
			if err != nil {
				return nil, err
			}
			rts = append(rts, q)
		default:
			r, err := NewOCI(name)
			if err != nil {
				return nil, err
			}
			rts = append(rts, r)
		}
	}
	return rts, nil
}

// checkVM checks what a VM runtime needs besides its VMM: the guest's
// kernel and initramfs, and KVM.
func (o *Options) checkVM(name string) error {
	for _, f := range []struct{ flag, path, fix string }{
		{"--kernel", o.Kernel, "make kernel"},
		{"--initrd", o.Initrd, "make initramfs"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("runtime %s: %s %s: %v (%s, or pass %s)", name, f.flag, f.path, err, f.fix, f.flag)
		}
	}
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return fmt.Errorf("runtime %s: %v (a VM needs KVM; leave %s out of --runtimes to compare containers only)", name, err, name)
	}
	return nil
}

func (o *Options) groups() []string {
	if len(o.Only) == 0 {
		return Groups
	}
	var gs []string
	for _, g := range Groups { // the order of priority, whatever the order given
		if slices.Contains(o.Only, g) {
			gs = append(gs, g)
		}
	}
	return gs
}

// step is one trial of one runtime.
type step struct {
	label    string
	measures []Measure
	run      trial
}

func run(ctx context.Context, o *Options, stdout, stderr io.Writer) error {
	rts, err := o.runtimes()
	if err != nil {
		return err
	}
	b, err := LoadBundle(o.Bundle)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "govmm-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p := &prober{bundles: map[string]string{}, timeout: 3 * time.Minute}
	for name, args := range map[string][]string{
		"ready":    workReady,
		"true":     workTrue,
		"cpu":      jobWork(cpuJob(b)),
		"syscalls": jobWork(syscallJob),
	} {
		if p.bundles[name], err = b.Write(tmp, args); err != nil {
			return err
		}
	}

	rep := &Report{Bundle: b.Dir, Runs: o.Runs, Started: time.Now().UTC(), Baseline: rts[0].Name()}
	for _, rt := range rts {
		rep.Runtimes = append(rep.Runtimes, rt.Name())
		if rt.Name() == "runc" {
			rep.Baseline = "runc"
		}
	}
	var steps []step
	for _, g := range o.groups() {
		ms := MeasuresOf(g)
		switch g {
		case "start":
			steps = append(steps, step{g, ms, p.startTrial})
		case "memory":
			steps = append(steps, step{g, ms, p.memoryTrial})
		case "cpu":
			steps = append(steps, step{g, ms, p.jobTrial("cpu", "cpu", true)})
			rep.Notes = append(rep.Notes, "cpu job: "+cpuJob(b))
		case "syscalls":
			steps = append(steps, step{g, ms, p.jobTrial("syscalls", "syscalls", false)})
			rep.Notes = append(rep.Notes, "syscall job: "+syscallJob)
		case "density":
			for i, k := range densityK {
				steps = append(steps, step{fmt.Sprintf("density %d", k), ms[3*i : 3*i+3], p.densityTrial(k)})
			}
		case "disk":
			if !hasTool(b, "fio") {
				rep.Notes = append(rep.Notes, "disk: not measured: the bundle has no fio")
				continue
			}
			dev, cleanup, err := setUpScratch(tmp)
			if err != nil {
				rep.Notes = append(rep.Notes, "disk: not measured: "+err.Error())
				continue
			}
			defer cleanup()
			major, minor, err := deviceNumbers(dev)
			if err != nil {
				return fmt.Errorf("scratch disk: %w", err)
			}
			if p.bundles["disk"], err = b.Write(tmp, shownJobWork(diskJob), addScratch(dev, major, minor)); err != nil {
				return err
			}
			steps = append(steps, step{g, ms, p.diskTrial})
			rep.Notes = append(rep.Notes, "disk: ext4 on a loop device over a file in TMPDIR, mounted at "+scratchMount+" (a virtio disk in a VM); fio job: "+diskJob)
		case "network":
			if !hasTool(b, "iperf3") {
				rep.Notes = append(rep.Notes, "network: not measured: the bundle has no iperf3")
				continue
			}
			if _, err := exec.LookPath("iperf3"); err != nil {
				rep.Notes = append(rep.Notes, "network: not measured: the host has no iperf3 (apt-get install iperf3)")
				continue
			}
			cleanup, err := setUpNetwork()
			if err != nil {
				rep.Notes = append(rep.Notes, "network: not measured: "+err.Error())
				continue
			}
			defer cleanup()
			if p.bundles["network"], err = b.Write(tmp, networkWork, joinNetns); err != nil {
				return err
			}
			steps = append(steps, step{g, ms, p.networkTrial})
			rep.Notes = append(rep.Notes, "network: a veth pair into the container's network namespace, a tap for a VM's virtio NIC; iperf3 for 3 s each way from the host; "+strconv.Itoa(pings)+" ICMP echoes one at a time")
		}
		for _, m := range ms {
			rep.Rows = append(rep.Rows, Row{Measure: m, Samples: map[string][]Sample{}})
		}
	}

	rowOf := map[string]*Row{}
	for i := range rep.Rows {
		rowOf[rep.Rows[i].Key] = &rep.Rows[i]
	}
	j, err := o.openJournal(rts)
	if err != nil {
		return err
	}
	if j != nil {
		defer j.close()
		rep.Started = j.started
		if n := len(j.done); n > 0 {
			fmt.Fprintf(stderr, "govmm compare: resuming from %s: %d runs already done\n", j.path, n)
		}
	}
	note, err := prepareImage(rts, p.bundles["ready"], stderr)
	if err != nil {
		return err
	}
	if note != "" {
		rep.Notes = append(rep.Notes, note)
	}
	prog := newProgress(stderr, len(rts)+len(steps)*o.Runs*len(rts))
	// One uncounted start per runtime first: it warms the page cache
	// for the runs that count, and a runtime that cannot run the bundle
	// stops the comparison here instead of failing every run.
	for _, rt := range rts {
		prog.begin("warm-up " + rt.Name())
		_, err := p.startTrial(ctx, rt)
		prog.end()
		if err != nil {
			prog.finish()
			return fmt.Errorf("runtime %s cannot run the bundle: %w", rt.Name(), err)
		}
	}
	failures := map[string]int{}
	for _, s := range steps {
		for i := 1; i <= o.Runs; i++ {
			for _, rt := range rts {
				if err := ctx.Err(); err != nil {
					return err
				}
				prog.begin(fmt.Sprintf("%s %s run %d/%d", s.label, rt.Name(), i, o.Runs))
				v, err := runOnce(ctx, j, s, rt, i)
				prog.end()
				if errors.Is(err, errJournal) {
					prog.finish()
					return err
				}
				if err != nil {
					failures[s.label+" "+rt.Name()]++
					prog.note(fmt.Sprintf("govmm compare: %s, %s, run %d: %v", s.label, rt.Name(), i, err))
				}
				for _, m := range s.measures {
					x, ok := v[m.Key]
					if !ok {
						x = math.NaN()
					}
					rowOf[m.Key].Samples[rt.Name()] = append(rowOf[m.Key].Samples[rt.Name()], Sample(x))
				}
			}
		}
	}
	prog.finish()
	if row := rowOf["memory.available"]; row != nil && hasNegative(row) {
		rep.Notes = append(rep.Notes, "MemAvailable is host-wide: a drop below zero means the host's other activity outweighed the instance; PSS is the steadier figure")
	}
	for k, n := range failures {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %d of %d runs failed", k, n, o.Runs))
	}
	slices.Sort(rep.Notes)
	if err := emit(rep, o, stdout); err != nil {
		return err
	}
	if j != nil {
		return j.remove() // the JSON report holds every run now
	}
	return nil
}

// errJournal marks a failure to write the journal, which ends the
// comparison: going on would risk hours of runs that cannot be resumed.
var errJournal = errors.New("journal")

// runOnce runs one trial, or takes it from the journal when an earlier,
// interrupted comparison ran it already.
func runOnce(ctx context.Context, j *journal, s step, rt Runtime, i int) (map[string]float64, error) {
	if j == nil {
		return s.run(ctx, rt)
	}
	if done, ok := j.lookup(s.label, rt.Name(), i); ok {
		return done.values, done.err
	}
	v, err := s.run(ctx, rt)
	if ctx.Err() != nil {
		return v, err // an interrupted run is not a result
	}
	if jerr := j.record(s.label, rt.Name(), i, v, err); jerr != nil {
		return nil, fmt.Errorf("%w %s: %v", errJournal, j.path, jerr)
	}
	return v, err
}

// openJournal opens --journal, if there is one, for this plan.
func (o *Options) openJournal(rts []Runtime) (*journal, error) {
	if o.Journal == "" {
		return nil, nil
	}
	var files []string
	for _, rt := range rts {
		switch rt := rt.(type) {
		case *Govmm:
			files = append(files, rt.Path, o.Initrd)
		case *QEMU:
			files = append(files, o.Initrd)
		}
	}
	plan, err := o.plan(files)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(o.Journal), 0o755); err != nil {
		return nil, err
	}
	return openJournal(o.Journal, plan, time.Now().UTC())
}

// emit prints the table and writes the files asked for.
func emit(rep *Report, o *Options, stdout io.Writer) error {
	if err := WriteTable(stdout, rep); err != nil {
		return err
	}
	files := map[string]string{} // path → kind
	if o.JSON != "" {
		files[o.JSON] = "json"
	}
	if o.CSV != "" {
		files[o.CSV] = "csv"
	}
	if o.Plot != "" {
		files[o.Plot] = "plot"
	}
	if o.Out != "" {
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return err
		}
		files[filepath.Join(o.Out, "compare.json")] = "json"
		files[filepath.Join(o.Out, "compare.csv")] = "csv"
		files[filepath.Join(o.Out, "compare.svg")] = "plot"
		files[filepath.Join(o.Out, "compare.png")] = "plot"
	}
	var errs []error
	for path, kind := range files {
		var err error
		switch kind {
		case "json":
			err = writeFile(path, func(w io.Writer) error { return WriteJSON(w, rep) })
		case "csv":
			err = writeFile(path, func(w io.Writer) error { return WriteCSV(w, rep) })
		case "plot":
			err = WritePlot(path, rep)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func hasNegative(r *Row) bool {
	for _, ss := range r.Samples {
		for _, x := range ss {
			if x < 0 {
				return true
			}
		}
	}
	return false
}
