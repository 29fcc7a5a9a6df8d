package compare

import (
	"context"
	"fmt"
	"math"
	"os"
	"syscall"
	"time"
)

// Measure is one row of the table.
type Measure struct {
	Key   string `json:"key"`   // e.g. start.ready
	Group string `json:"group"` // the --only name
	Name  string `json:"name"`
	Unit  string `json:"unit"`
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
			{"start.ready", group, "launch → first stdout line", "ms"},
			{"start.exit", group, "launch → exit of true", "ms"},
			{"start.teardown", group, "teardown: signal → all gone", "ms"},
		}
	case "memory":
		return []Measure{
			{"memory.available", group, "idle: host MemAvailable drop", "MiB"},
			{"memory.pss", group, "idle: PSS of its host processes", "MiB"},
			{"memory.cgroup", group, "idle: container cgroup charge", "MiB"},
			{"memory.overhead", group, "idle: VMM outside guest RAM", "MiB"},
		}
	case "cpu":
		return []Measure{
			{"cpu.wall", group, "CPU job: wall time", "s"},
			{"cpu.time", group, "CPU job: host CPU time", "s"},
		}
	case "syscalls":
		return []Measure{{"syscalls.wall", group, "syscall job: wall time", "s"}}
	case "disk":
		return []Measure{{"disk.wall", group, "fio job: wall time", "s"}}
	case "network":
		return []Measure{{"network.wall", group, "loopback TCP job: wall time", "s"}}
	case "density":
		var ms []Measure
		for _, k := range densityK {
			ms = append(ms,
				Measure{fmt.Sprintf("density.%d.available", k), group, fmt.Sprintf("%d idle: MemAvailable drop", k), "MiB"},
				Measure{fmt.Sprintf("density.%d.per", k), group, fmt.Sprintf("%d idle: drop per instance", k), "MiB"},
				Measure{fmt.Sprintf("density.%d.ready", k), group, fmt.Sprintf("%d idle: launch → all ready", k), "s"})
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
	return []string{"sh", "-c", "echo ready; sleep 1; echo go; if " + job + " >/dev/null; then echo done; else echo failed; fi; exec sleep 3600"}
}

// cpuJob is a fixed CPU-bound job: stress-ng's when the bundle has it.
func cpuJob(b *Bundle) string {
	if hasTool(b, "stress-ng") {
		// /dev/shm: stress-ng wants a writable directory, and a bundle's root
		// may be read-only, as runc spec makes it.
		return "stress-ng --cpu 1 --cpu-ops 3000 --temp-path /dev/shm"
	}
	return "head -c 104857600 /dev/zero | sha256sum"
}

// diskJob does random 4 KiB reads and writes, bypassing the page cache, to
// a file on the instance's root: its disk, as the workload would use it.
// The root must be writable (root.readonly false in the bundle).
const diskJob = "fio --name=compare --filename=/var/tmp/compare.fio --size=64M --rw=randrw --bs=4k --direct=1 --ioengine=psync --unlink=1"

// networkJob pushes 2 GiB through TCP on the instance's loopback: the cost
// of its kernel's network stack, not of a NIC (a container and a guest have
// different host-side plumbing, which this leaves out).
const networkJob = "iperf3 -s -1 -D && sleep 0.5 && iperf3 -c 127.0.0.1 -n 2G"

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
	in, err := rt.Start(p.bundles["ready"], p.id())
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

	in, err = rt.Start(p.bundles["true"], p.id())
	if err != nil {
		return nil, err
	}
	if err := rt.Exited(ctx, in); err != nil {
		rt.Teardown(in)
		return nil, err
	}
	v["start.exit"] = ms(time.Since(in.Launched))
	return v, rt.Release(in)
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
// enough for a guest's boot to stop allocating.
const settle = time.Second

func (p *prober) memoryTrial(ctx context.Context, rt Runtime) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	base, err := settledAvailable()
	if err != nil {
		return nil, err
	}
	in, err := rt.Start(p.bundles["ready"], p.id())
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
		in, err := rt.Start(p.bundles[work], p.id())
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
			in, err := rt.Start(p.bundles["ready"], p.id())
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
