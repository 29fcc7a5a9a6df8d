package compare

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/govmm/govmm/guest/report"
)

// Measure is one row of the table.
type Measure struct {
	Key   string `json:"key"`   // e.g. start.ready
	Group string `json:"group"` // the --only name
	Name  string `json:"name"`
	Unit  string `json:"unit"`
	// Higher: more is better (a throughput); otherwise less is.
	Higher bool `json:"higher_is_better,omitempty"`
}

// Groups are the --only names, most important first.
var Groups = []string{"start", "memory", "cpu", "syscalls", "density", "disk", "network"}

// densityK are the numbers of idle instances run at once.
var densityK = []int{1, 4, 16}

// MeasuresOf lists the rows a group produces.
func MeasuresOf(group string) []Measure {
	switch group {
	case "start":
		return []Measure{
			{"start.boot", group, "no bundle: launch → guest init", "ms", false},
			{"start.boot.host", group, "no bundle: launch → guest clock starts", "ms", false},
			{"start.boot.kernel", group, "no bundle: guest clock at init", "ms", false},
			{"start.ready", group, "launch → first stdout line", "ms", false},
			{"start.phase.host", group, "bundle: launch → guest clock starts", "ms", false},
			{"start.phase.kernel", group, "bundle: guest clock at init ready", "ms", false},
			{"start.phase.setup", group, "bundle: init ready → exec", "ms", false},
			{"start.phase.exec", group, "bundle: exec → first output", "ms", false},
			{"start.exit", group, "launch → exit of true", "ms", false},
			{"start.teardown", group, "teardown: signal → all gone", "ms", false},
		}
	case "memory":
		return []Measure{
			{"memory.available", group, "idle: host MemAvailable drop", "MiB", false},
			{"memory.pss", group, "idle: PSS of its host processes", "MiB", false},
			{"memory.cgroup", group, "idle: container cgroup charge", "MiB", false},
			{"memory.overhead", group, "idle: VMM outside guest RAM", "MiB", false},
		}
	case "cpu":
		return []Measure{
			{"cpu.wall", group, "CPU job: wall time", "s", false},
			{"cpu.time", group, "CPU job: host CPU time", "s", false},
		}
	case "syscalls":
		return []Measure{{"syscalls.wall", group, "syscall job: wall time", "s", false}}
	case "disk":
		return []Measure{
			{"disk.seqwrite", group, "scratch disk: write 1 MiB blocks", "MiB/s", true},
			{"disk.seqread", group, "scratch disk: read 1 MiB blocks", "MiB/s", true},
			{"disk.randread", group, "scratch disk: random 4 KiB reads, depth 8", "kIOPS", true},
		}
	case "network":
		return []Measure{
			{"network.tx", group, "TCP host → instance (iperf3)", "Gbit/s", true},
			{"network.rx", group, "TCP instance → host (iperf3 -R)", "Gbit/s", true},
			{"network.rtt", group, "ICMP echo round trip, median", "µs", false},
		}
	case "density":
		var ms []Measure
		for _, k := range densityK {
			ms = append(ms,
				Measure{fmt.Sprintf("density.%d.available", k), group, fmt.Sprintf("%d idle: MemAvailable drop", k), "MiB", false},
				Measure{fmt.Sprintf("density.%d.per", k), group, fmt.Sprintf("%d idle: drop per instance", k), "MiB", false},
				Measure{fmt.Sprintf("density.%d.ready", k), group, fmt.Sprintf("%d idle: launch → all ready", k), "s", false})
		}
		return ms
	}
	return nil
}

// Workloads, as process.args of the bundle. Markers on stdout let the host
// time the part that matters: "ready" once the workload runs, "go" and
// "done" around a job. Jobs then sleep so that a container's cgroup can
// still be read.
var (
	workReady = []string{"sh", "-c", "echo ready; exec sleep 3600"}
	workTrue  = []string{"true"}
)

func jobWork(job string) []string {
	return shownJobWork(job + " >/dev/null")
}

// shownJobWork is jobWork with the job's output on the workload's stdout,
// for the host to read its figures.
func shownJobWork(job string) []string {
	return []string{"sh", "-c", "echo ready; sleep 1; echo go; if " + job + "; then echo done; else echo failed; fi; exec sleep 3600"}
}

// networkWork serves iperf3 and idles; the host drives the measures. The
// server keeps each stream's buffer in a file under TMPDIR: /dev/shm,
// as a bundle's root may be read-only (runc spec makes it so).
var networkWork = []string{"sh", "-c", "TMPDIR=/dev/shm iperf3 -s -D && sleep 1 && echo ready; exec sleep 3600"}

// cpuJob is a fixed CPU-bound job: stress-ng's when the bundle has it.
func cpuJob(b *Bundle) string {
	if hasTool(b, "stress-ng") {
		// /dev/shm: stress-ng wants a writable directory, and a bundle's root
		// may be read-only, as runc spec makes it.
		return "stress-ng --cpu 1 --cpu-ops 3000 --temp-path /dev/shm"
	}
	return "head -c 104857600 /dev/zero | sha256sum"
}

// hasTool reports whether the bundle's rootfs has a program in /usr/bin or /bin.
func hasTool(b *Bundle, name string) bool {
	return b.HasFile("/usr/bin/"+name) || b.HasFile("/bin/"+name)
}

// syscallJob makes a million system calls that do almost nothing: a
// one-byte read and write each.
const syscallJob = "dd if=/dev/zero of=/dev/null bs=1 count=500000"

// A trial runs one fresh instance (or, for density, several) of one runtime
// and returns a value per measure key.
type trial func(ctx context.Context, rt Runtime) (map[string]float64, error)

// prober holds the workload bundles and hands out instance names.
type prober struct {
	bundles map[string]string // workload name → bundle dir
	n       int
	timeout time.Duration
}

func (p *prober) id() string {
	p.n++
	return fmt.Sprintf("govmm-compare-%d-%d", os.Getpid(), p.n)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// startTrial: launch → "ready", teardown of that instance, and launch →
// exit of a second instance running true.
func (p *prober) startTrial(ctx context.Context, rt Runtime) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v := map[string]float64{}
	in, err := rt.Start(p.bundles["ready"], p.id(), nil)
	if err != nil {
		return nil, err
	}
	l, err := in.WaitLine(ctx, "ready")
	if err != nil {
		rt.Teardown(in)
		return nil, err
	}
	v["start.ready"] = ms(l.At.Sub(in.Launched))
	// A detached runtime may print its container's first line before it
	// has itself exited: the teardown's clock starts after that.
	if d, ok := rt.(interface {
		started(context.Context, *Instance) error
	}); ok {
		if err := d.started(ctx, in); err != nil {
			rt.Teardown(in)
			return nil, err
		}
	}
	t0 := time.Now()
	if err := rt.Teardown(in); err != nil {
		return nil, err
	}
	v["start.teardown"] = ms(time.Since(t0))
	if ph, ok := rt.(interface {
		startPhases(*Instance) (map[string]float64, error)
	}); ok {
		phases, err := ph.startPhases(in)
		if err != nil {
			return nil, err
		}
		maps.Copy(v, phases)
	}

	in, err = rt.Start(p.bundles["true"], p.id(), nil)
	if err != nil {
		return nil, err
	}
	if err := rt.Exited(ctx, in); err != nil {
		rt.Teardown(in)
		return nil, err
	}
	v["start.exit"] = ms(time.Since(in.Launched))
	if err := rt.Release(in); err != nil {
		return nil, err
	}
	if b, ok := rt.(interface {
		BareBoot(string) (*Instance, error)
	}); ok {
		in, err := b.BareBoot(p.id())
		if err != nil {
			return nil, err
		}
		l, err := in.WaitPrefix(ctx, report.ReportPrefix)
		in.cmd.Process.Kill()
		in.wait(context.Background())
		in.close()
		if err != nil {
			return nil, err
		}
		v["start.boot"] = ms(l.At.Sub(in.Launched))
		if r, ok := report.Parse(l.Text); ok && r.UptimeS > 0 {
			v["start.boot.kernel"] = r.UptimeS * 1000
			v["start.boot.host"] = v["start.boot"] - r.UptimeS*1000
		}
	}
	return v, nil
}

// dropCaches writes back and drops the page cache, so that MemAvailable
// before and after compare like with like.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

func settledAvailable() (int64, error) {
	if err := dropCaches(); err != nil {
		return 0, fmt.Errorf("drop caches: %w", err)
	}
	return memAvailable()
}

// settle is how long an idle instance runs before it is weighed: long
// enough for a guest's boot to stop allocating, and for a guest that
// reports its free pages (virtio-balloon) to have reported them (the
// kernel waits 2 s before it reports).
const settle = 5 * time.Second

func (p *prober) memoryTrial(ctx context.Context, rt Runtime) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	base, err := settledAvailable()
	if err != nil {
		return nil, err
	}
	in, err := rt.Start(p.bundles["ready"], p.id(), nil)
	if err != nil {
		return nil, err
	}
	defer rt.Teardown(in)
	if _, err := in.WaitLine(ctx, "ready"); err != nil {
		return nil, err
	}
	time.Sleep(settle)
	u, err := rt.Usage(in)
	if err != nil {
		return nil, err
	}
	after, err := settledAvailable()
	if err != nil {
		return nil, err
	}
	v := map[string]float64{
		"memory.available": mib(base - after),
		"memory.pss":       mib(u.PSS),
		"memory.cgroup":    math.NaN(),
		"memory.overhead":  math.NaN(),
	}
	if u.Cgroup >= 0 {
		v["memory.cgroup"] = mib(u.Cgroup)
	}
	if u.Overhead >= 0 {
		v["memory.overhead"] = mib(u.Overhead)
	}
	return v, nil
}

// jobTrial times the job between the "go" and "done" lines, and the host
// CPU time the instance used from "ready" (before a second of sleep) to
// "done": boot and teardown are the start measures' business.
func (p *prober) jobTrial(work, prefix string, withCPU bool) trial {
	return func(ctx context.Context, rt Runtime) (map[string]float64, error) {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		in, err := rt.Start(p.bundles[work], p.id(), nil)
		if err != nil {
			return nil, err
		}
		defer rt.Teardown(in)
		if _, err := in.WaitLine(ctx, "ready"); err != nil {
			return nil, err
		}
		var c0 float64
		if withCPU {
			if c0, err = rt.CPUSeconds(in); err != nil {
				return nil, err
			}
		}
		g, err := in.WaitLine(ctx, "go")
		if err != nil {
			return nil, err
		}
		d, err := in.WaitLine(ctx, "done")
		if err != nil {
			return nil, err
		}
		v := map[string]float64{prefix + ".wall": d.At.Sub(g.At).Seconds()}
		if withCPU {
			c1, err := rt.CPUSeconds(in)
			if err != nil {
				return nil, err
			}
			v[prefix+".time"] = c1 - c0
		}
		return v, nil
	}
}

// densityTrial runs k idle instances at once.
func (p *prober) densityTrial(k int) trial {
	return func(ctx context.Context, rt Runtime) (map[string]float64, error) {
		ctx, cancel := context.WithTimeout(ctx, p.timeout*time.Duration(k))
		defer cancel()
		base, err := settledAvailable()
		if err != nil {
			return nil, err
		}
		var ins []*Instance
		defer func() {
			for _, in := range ins {
				rt.Teardown(in)
			}
		}()
		t0 := time.Now()
		for i := 0; i < k; i++ {
			in, err := rt.Start(p.bundles["ready"], p.id(), nil)
			if err != nil {
				return nil, err
			}
			ins = append(ins, in)
		}
		var last time.Time
		for _, in := range ins {
			l, err := in.WaitLine(ctx, "ready")
			if err != nil {
				return nil, err
			}
			if l.At.After(last) {
				last = l.At
			}
		}
		time.Sleep(settle)
		after, err := settledAvailable()
		if err != nil {
			return nil, err
		}
		drop := mib(base - after)
		key := fmt.Sprintf("density.%d.", k)
		return map[string]float64{
			key + "available": drop,
			key + "per":       drop / float64(k),
			key + "ready":     last.Sub(t0).Seconds(),
		}, nil
	}
}

// diskTrial runs fio on the scratch disk and reads its figures from the
// workload's output.
func (p *prober) diskTrial(ctx context.Context, rt Runtime) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	in, err := rt.Start(p.bundles["disk"], p.id(), nil)
	if err != nil {
		return nil, err
	}
	defer rt.Teardown(in)
	for _, want := range []string{"ready", "go"} {
		if _, err := in.WaitLine(ctx, want); err != nil {
			return nil, err
		}
	}
	_, out, err := in.Collect(ctx, "done")
	if err != nil {
		return nil, err
	}
	jobs, err := fioResults(out)
	if err != nil {
		return nil, err
	}
	w, r, rr := jobs["seqwrite"], jobs["seqread"], jobs["randread"]
	if w.writeKiBs == 0 || r.readKiBs == 0 || rr.readIOPS == 0 {
		return nil, fmt.Errorf("fio: a phase did no I/O: %q", out)
	}
	return map[string]float64{
		"disk.seqwrite": w.writeKiBs / 1024,
		"disk.seqread":  r.readKiBs / 1024,
		"disk.randread": rr.readIOPS / 1000,
	}, nil
}

// networkTrial starts an iperf3 server in the instance and measures from
// the host: TCP both ways, then echo round trips.
func (p *prober) networkTrial(ctx context.Context, rt Runtime) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	addr := containerAddr
	var nic *NIC
	if _, container := rt.(*OCI); !container {
		addr = vmAddr
		nic = &NIC{Tap: tapName, Addr: vmAddr}
	}
	in, err := rt.Start(p.bundles["network"], p.id(), nic)
	if err != nil {
		return nil, err
	}
	defer rt.Teardown(in)
	if _, err := in.WaitLine(ctx, "ready"); err != nil {
		return nil, err
	}
	v := map[string]float64{}
	if v["network.tx"], err = iperf3(ctx, addr.Addr(), false); err != nil {
		return nil, err
	}
	if v["network.rx"], err = iperf3(ctx, addr.Addr(), true); err != nil {
		return nil, err
	}
	if v["network.rtt"], err = pingRTT(addr.Addr()); err != nil {
		return nil, err
	}
	return v, nil
}
