package boot

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/govmm/govmm"
	"github.com/govmm/govmm/guest/report"
)

// resources counts what a leaking VM would leave behind in its host process.
type resources struct{ fds, threads, goroutines int }

func countResources(t *testing.T) resources {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	st, err := procStatus("self")
	if err != nil {
		t.Fatal(err)
	}
	threads, ok := st["Threads"]
	if !ok {
		t.Fatal("/proc/self/status has no Threads count")
	}
	return resources{fds: len(fds), threads: threads, goroutines: runtime.NumGoroutine()}
}

// bootLibraryWithin boots the test initramfs in this process through the
// govmm API, with 2 vCPUs. A boot that has not ended after limit is
// cancelled and described in the returned string rather than failed: the
// caller decides. Any other wrong ending fails the test.
func bootLibraryWithin(t *testing.T, e env, limit time.Duration) (hung string) {
	t.Helper()
	var console syncBuffer
	vm, err := govmm.New(govmm.Config{
		Kernel: e.kernel, Initrd: e.initrd, Memory: 256 << 20, CPUs: 2,
		Cmdline: cmdline(), Console: &console,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// A boot about to time out: where is every goroutine, vCPUs included?
	stacks := make(chan []byte, 1)
	snapshot := time.AfterFunc(limit*9/10, func() { stacks <- goroutineStacks() })
	res, err := vm.Run(ctx)
	if !snapshot.Stop() {
		return fmt.Sprintf("Run: %v, %v (%s), near its %v limit\nconsole:\n%s\ngoroutines shortly before:\n%s",
			res.Reason, err, res.Detail, limit, console.String(), <-stacks)
	}
	if err != nil || res.Reason != govmm.PoweredOff {
		t.Fatalf("Run: %v, %v (%s)\nconsole:\n%s", res.Reason, err, res.Detail, console.String())
	}
	if c := report.Scan(strings.NewReader(console.String())); c.Report == nil || c.Report.CPUs != 2 {
		t.Fatalf("no report of 2 CPUs on the console:\n%s", console.String())
	}
	return ""
}

// settle gives exiting goroutines and threads a moment to finish.
func settle(t *testing.T, want resources) resources {
	t.Helper()
	var r resources
	for i := 0; i < 50; i++ {
		r = countResources(t)
		if r.goroutines <= want.goroutines && r.fds <= want.fds && r.threads <= want.threads {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// closeUnreachableFiles has the finalizers of files that earlier tests in
// this process dropped without closing run now, before a baseline is
// taken: else they close during the boots and look like an fd count that
// moved (seen: the two ends of a pipe, which govmm never makes, closed
// during the boots after the hostile-driver test). Only the baseline gets
// this: a file govmm drops unclosed still shows at the end.
func closeUnreachableFiles() {
	runtime.GC()
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
}

// openFDs is what each of this process's fds refers to, by number.
func openFDs() map[string]string {
	fds := map[string]string{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[e.Name()] = target
	}
	return fds
}

// fdDiff lists the fds of a that b does not have, as "fd→target".
func fdDiff(a, b map[string]string) []string {
	var out []string
	for fd, target := range a {
		if b[fd] != target {
			out = append(out, fd+"→"+target)
		}
	}
	sort.Strings(out)
	return out
}

func TestTwentyBootsLeakNothing(t *testing.T) {
	e := testEnv(t)
	// The nested sandbox hangs a guest now and then (docs/sandbox.md).
	// There, and only there, a boot that hangs is cancelled, logged,
	// recorded as FLAKY for the run's summary and replaced, up to maxHung
	// times: what this test checks is that every boot, cancelled ones
	// included, gives back what it took. On real KVM a hung boot fails.
	maxHung := 0
	if os.Getenv("GOVMM_IN_SANDBOX") == "1" {
		maxHung = 3
	}
	const limit = 90 * time.Second
	hung := 0
	boot := func(n int) {
		for {
			msg := bootLibraryWithin(t, e, limit)
			if msg == "" {
				return
			}
			hung++
			if hung > maxHung {
				t.Fatalf("boot %d hung (%d hung boots, %d allowed): %s", n, hung, maxHung, msg)
			}
			t.Logf("boot %d hung and was cancelled (%d of at most %d): %s", n, hung, maxHung, msg)
			recordFlaky(t, fmt.Sprintf("%s-boot%d", t.Name(), n), msg)
		}
	}
	// The first boot warms up the Go runtime (its thread pool, timers).
	boot(0)
	closeUnreachableFiles()
	before := settle(t, resources{})
	fdsBefore := openFDs()
	const boots = 20
	for i := 1; i <= boots; i++ {
		boot(i)
	}
	after := settle(t, before)
	t.Logf("after the warm-up boot: %+v; after %d more: %+v", before, boots, after)
	if after.fds != before.fds {
		t.Errorf("open fds went from %d to %d over %d boots; opened: %v, closed: %v",
			before.fds, after.fds, boots, fdDiff(openFDs(), fdsBefore), fdDiff(fdsBefore, openFDs()))
	}
	if after.goroutines > before.goroutines {
		t.Errorf("goroutines went from %d to %d over %d boots", before.goroutines, after.goroutines, boots)
	}
	// Each boot runs 2 vCPU threads; the Go runtime may keep a few idle
	// threads around, but never a thread per vCPU per boot.
	if after.threads > before.threads+2 {
		t.Errorf("threads went from %d to %d over %d boots", before.threads, after.threads, boots)
	}
}

func TestCancelStopsTheVM(t *testing.T) {
	e := testEnv(t)
	var console syncBuffer
	vm, err := govmm.New(govmm.Config{
		Kernel: e.kernel, Initrd: e.initrd, Memory: 256 << 20, CPUs: 2,
		Cmdline: cmdline("govmm.exit=hang"), Console: &console,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		res govmm.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := vm.Run(ctx)
		done <- result{res, err}
	}()
	deadline := time.Now().Add(bootTimeout)
	for !strings.Contains(console.String(), report.DonePrefix) {
		if time.Now().After(deadline) {
			t.Fatalf("guest never reached its hang:\n%s", console.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case r := <-done:
		if r.err != nil || r.res.Reason != govmm.Stopped {
			t.Errorf("Run after cancel: %v, %v; want Stopped", r.res.Reason, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of cancel")
	}
}

func goroutineStacks() []byte {
	buf := make([]byte, 1<<20)
	return buf[:runtime.Stack(buf, true)]
}
