package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
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

// A guest program that plays a malicious driver against the rng, the
// virtio-console and a spare disk and NIC (guest/hostile, every case in one
// boot of about 90 s in the sandbox) must not bring govmm down or make it
// grow: after every case the guest reads its other disk and gets an echo
// from the host over its other NIC. The guest's console stays on ttyS0 (the
// explicit command line), so the virtio-console is a spare too.
func TestHostileDriver(t *testing.T) {
	e := testEnv(t)
	hostTap(t, "gvhst0", "10.90.0.1/24")
	hostTap(t, "gvhst1", "10.90.1.1/24")
	echoes := serveEcho(t, "10.90.0.1:5300")
	const mib = 4
	health := patternImage(t, "health.img", 7, mib<<20)
	spare := patternImage(t, "spare.img", 8, mib<<20)
	wantSum := patternSum(7, 1)
	const check = "hostile=all:vda:vdb:eth1:10.90.0.1:5300"
	args := []string{"--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M", "--cpus", "2", "--console", "virtio",
		"--disk", "path=" + health, "--disk", "path=" + spare,
		"--net", "tap=gvhst0,mac=52:54:00:00:90:02", "--net", "tap=gvhst1,mac=52:54:00:00:90:03",
		"--cmdline", cmdline("govmm.check=net=eth0:10.90.0.2/24," + check)}

	r := runSampled(t, e, args)
	t.Logf("govmm: status %d after %v; RSS %d → %d KiB (max %d), threads %d → %d (max %d); stderr %d bytes; %d echoes",
		r.status, r.elapsed.Round(time.Millisecond), r.first.rssKB, r.last.rssKB, r.max.rssKB, r.first.threads, r.last.threads, r.max.threads, len(r.stderr), echoes())
	if r.status != statusPoweredOff {
		t.Fatalf("govmm exit status %d, want %d (powered off)\nstdout:\n%s\nstderr:\n%s", r.status, statusPoweredOff, r.stdout, tail(r.stderr, 4096))
	}
	o := outcome{status: r.status, stdout: r.stdout, stderr: r.stderr, guest: report.Scan(strings.NewReader(r.stdout))}
	passed(t, o, "net=eth0:10.90.0.2/24")
	names := hostile.Names()
	missing := false
	for _, name := range names {
		c, ok := o.guest.Check("hostile:" + name)
		switch {
		case !ok:
			t.Errorf("case %s: no line from the guest", name)
			missing = true
		case !c.OK:
			t.Errorf("case %s failed: %s", name, c.Detail)
		default:
			wantField(t, c, "disk_sha256", wantSum)
			t.Logf("case %s: %s", name, c.Detail)
		}
	}
	if missing {
		t.Logf("the guest's console:\n%s", r.stdout)
	}
	wantField(t, passed(t, o, check), "cases", fmt.Sprint(len(names)))
	if got := echoes(); got < len(names) {
		t.Errorf("the host echoed %d times, want one per case (%d)", got, len(names))
	}
	wantBounded(t, r)
}

// wantBounded checks govmm's log, RSS and threads against the bounds above.
func wantBounded(t *testing.T, r sampledRun) {
	t.Helper()
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
// is how many connections were echoed. The test's cleanup closes the
// listener and every connection still open (a guest that powers off
// leaves its last ones half open), so that no fd outlives the test.
func serveEcho(t *testing.T, addr string) func() int {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	open := map[net.Conn]bool{}
	closed := false
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		closed = true
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { mu.Lock(); delete(open, c); mu.Unlock(); c.Close() }()
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
	st, err := procStatus(strconv.Itoa(pid))
	if err != nil {
		return procSample{}, false
	}
	return procSample{rssKB: st["VmRSS"], threads: st["Threads"]}, st["Threads"] > 0
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
		// The report's vCPU part comes first, before the goroutines: keep
		// it, since it tells a guest the sandbox lost (docs/sandbox.md).
		vcpus, _, _ := strings.Cut(r.stderr, "SIGQUIT:")
		t.Fatalf("govmm: no exit after %v; stopped with SIGQUIT\nstdout:\n%s\nstderr up to the goroutines:\n%s\nstderr's end:\n%s",
			hostileTimeout, r.stdout, tail(vcpus, 8<<10), tail(r.stderr, 8<<10))
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
