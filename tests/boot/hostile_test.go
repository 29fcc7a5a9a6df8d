package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govmm/govmm/guest/hostile"
	"github.com/govmm/govmm/guest/report"
)

// Bounds on govmm while a guest driver attacks its devices (guest/hostile).
const (
	// Over a whole boot govmm may log this much: its warnings are rate
	// limited per device (a line a second at most), so a run of a few
	// minutes stays far below it however hard the guest tries.
	hostileStderrLimit = 64 << 10
	// Guest RAM that the guest touches for the first time shows up in
	// govmm's RSS too; the cases touch little (the driver's 128 DMA pages,
	// init's heap), so growth past this is govmm's own memory.
	hostileRSSGrowthKB = 32 << 10
	// A device's goroutines may park on new threads while the guest resets
	// and restarts it, but a thread per reset or per request would grow far
	// past this.
	hostileThreadGrowth = 6
	hostileTimeout      = 5 * time.Minute
)

// hostileGroups are the boots the cases are spread over, each short enough
// for the sandbox, and each a pattern hostile.Run takes.
var hostileGroups = []string{"all"}

// A guest program that plays a malicious driver against the spare rng, disk
// and NIC must not bring govmm down or make it grow: after every case the
// guest reads its other disk and gets an echo from the host over its other
// NIC.
func TestHostileDriver(t *testing.T) {
	e := testEnv(t)
	for i, group := range hostileGroups {
		t.Run(group, func(t *testing.T) { hostileBoot(t, e, i, group) })
	}
}

func hostileBoot(t *testing.T, e env, n int, group string) {
	tapA, tapB := fmt.Sprintf("gvhst%da", n), fmt.Sprintf("gvhst%db", n)
	host := fmt.Sprintf("10.%d.0.1", 90+n)
	hostTap(t, tapA, host+"/24")
	hostTap(t, tapB, fmt.Sprintf("10.%d.1.1/24", 90+n))
	echoes := serveEcho(t, host+":5300")
	const mib = 4
	health := patternImage(t, "health.img", 7, mib<<20)
	spare := patternImage(t, "spare.img", 8, mib<<20)
	wantSum := patternSum(7, 1)
	args := []string{"--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--cpus", "1",
		"--disk", "path=" + health, "--disk", "path=" + spare,
		"--net", "tap=" + tapA + ",mac=52:54:00:00:90:02", "--net", "tap=" + tapB + ",mac=52:54:00:00:90:03",
		"--cmdline", cmdline(fmt.Sprintf("govmm.check=net=eth0:10.%d.0.2/24,hostile=%s:vda:vdb:eth1:%s:5300", 90+n, group, host))}

	r := runSampled(t, e, args)
	t.Logf("govmm: status %d after %v; RSS %d → %d KiB (max %d), threads %d → %d (max %d); stderr %d bytes; %d echoes",
		r.status, r.elapsed.Round(time.Millisecond), r.first.rssKB, r.last.rssKB, r.max.rssKB, r.first.threads, r.last.threads, r.max.threads, len(r.stderr), echoes())
	if r.status != statusPoweredOff {
		t.Fatalf("govmm exit status %d, want %d (powered off)\nstdout:\n%s\nstderr:\n%s", r.status, statusPoweredOff, r.stdout, tail(r.stderr, 4096))
	}
	o := outcome{status: r.status, stdout: r.stdout, stderr: r.stderr, guest: report.Scan(strings.NewReader(r.stdout))}
	passed(t, o, fmt.Sprintf("net=eth0:10.%d.0.2/24", 90+n))
	want := 0
	for _, name := range hostile.Names() {
		if group != "all" && !strings.HasPrefix(name, strings.TrimSuffix(group, "*")) {
			continue
		}
		want++
		c, ok := o.guest.Check("hostile:" + name)
		switch {
		case !ok:
			t.Errorf("case %s: no line from the guest", name)
		case !c.OK:
			t.Errorf("case %s failed: %s", name, c.Detail)
		default:
			wantField(t, c, "disk_sha256", wantSum)
			t.Logf("case %s: %s", name, c.Detail)
		}
	}
	sum := passed(t, o, fmt.Sprintf("hostile=%s:vda:vdb:eth1:%s:5300", group, host))
	wantField(t, sum, "cases", fmt.Sprint(want))
	if got := echoes(); got < want {
		t.Errorf("the host echoed %d times, want one per case (%d)", got, want)
	}
	if len(r.stderr) > hostileStderrLimit {
		t.Errorf("govmm wrote %d bytes to stderr, want at most %d:\n%s", len(r.stderr), hostileStderrLimit, tail(r.stderr, 4096))
	}
	if g := r.max.rssKB - r.first.rssKB; g > hostileRSSGrowthKB {
		t.Errorf("govmm's RSS grew by %d KiB during the cases, want at most %d", g, hostileRSSGrowthKB)
	}
	if g := r.max.threads - r.first.threads; g > hostileThreadGrowth {
		t.Errorf("govmm's threads grew from %d to %d during the cases, want at most %d more", r.first.threads, r.max.threads, hostileThreadGrowth)
	}
	t.Logf("govmm stderr:\n%s", tail(r.stderr, 2048))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// serveEcho echoes every connection to addr back; the count it returns
// is how many connections were echoed.
func serveEcho(t *testing.T, addr string) func() int {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				if _, err := io.Copy(c, c); err == nil {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}()
		}
	}()
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// procSample is govmm's size at one moment, from /proc/PID/status.
type procSample struct{ rssKB, threads int }

func sampleProc(pid int) (procSample, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, false
	}
	var s procSample
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			fmtSscan(f[0], &s.rssKB)
		case "Threads":
			fmtSscan(f[0], &s.threads)
		}
	}
	return s, s.threads > 0
}

// sampledRun is a govmm run with its size sampled from the guest's first
// hostile case on: first is that moment, max the largest of each measure.
type sampledRun struct {
	status           int
	elapsed          time.Duration
	stdout, stderr   string
	first, last, max procSample
}

// runSampled runs govmm with args, sampling its size every 100 ms once the
// guest has started its cases.
func runSampled(t *testing.T, e env, args []string) sampledRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"run"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = killGrace
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var r sampledRun
	var out strings.Builder
	started := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.OnceFunc(func() { close(started) })
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), report.CheckPrefix+"hostile:") {
				once()
			}
		}
	}()
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		select {
		case <-started:
		case <-scanned:
			return
		}
		r.first, _ = sampleProc(cmd.Process.Pid)
		r.max = r.first
		for {
			select {
			case <-scanned:
				return
			case <-time.After(100 * time.Millisecond):
			}
			s, ok := sampleProc(cmd.Process.Pid)
			if !ok {
				continue
			}
			r.last = s
			r.max.rssKB, r.max.threads = max(r.max.rssKB, s.rssKB), max(r.max.threads, s.threads)
		}
	}()
	<-scanned
	<-sampling
	err = cmd.Wait()
	r.elapsed, r.stdout, r.stderr = time.Since(start), out.String(), stderr.String()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("govmm: no exit after %v; stopped with SIGQUIT\nstdout:\n%s\nstderr:\n%s", hostileTimeout, r.stdout, tail(r.stderr, 16<<10))
	case errors.As(err, &exit) && exit.Exited():
		r.status = exit.ExitCode()
	case err != nil:
		t.Fatalf("govmm: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	if r.first.threads == 0 {
		t.Fatalf("the guest never started a hostile case\nstdout:\n%s\nstderr:\n%s", r.stdout, tail(r.stderr, 4096))
	}
	return r
}
