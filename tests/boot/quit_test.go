package boot

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/govmm/govmm/guest/report"
)

// kernelText is where an x86-64 Linux kernel's text lies, KASLR or not;
// user space ends at userEnd (4-level paging; 5-level only adds to it when a
// program asks, and the guest's init does not).
const (
	kernelText = 0xffffffff80000000
	userEnd    = 0x0000800000000000
)

// SIGQUIT on a guest that sits idle shows both vCPUs in the kernel or in
// its init, with page tables in guest RAM, then the goroutine dump, and
// exits with 2.
func TestQuitShowsWhereTheVCPUsAre(t *testing.T) {
	e := testEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	run := startGovmm(t, ctx, e, "--kernel", e.kernel, "--initrd", e.initrd, "--memory", "256M",
		"--cpus", "2", "--cmdline", cmdline("govmm.exit=hang"))
	var seen []string
	sc := run.lines
	for sc.Scan() && !strings.Contains(sc.Text(), report.DonePrefix) {
		seen = append(seen, sc.Text())
	}
	if err := run.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	err := run.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("govmm after SIGQUIT: %v, want exit status 2\nstdout:\n%s\nstderr:\n%s", err, strings.Join(seen, "\n"), run.stderr.String())
	}
	out := run.stderr.String()
	line := regexp.MustCompile(`govmm: vCPU (\d): \S+ rip=(0x[0-9a-f]+) `)
	found := map[string]bool{}
	for _, m := range line.FindAllStringSubmatch(out, -1) {
		// Idle, or the guest's init (a Go program) still running its
		// runtime: kernel text or user space, nothing in between.
		rip, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil || rip >= userEnd && rip < kernelText {
			t.Errorf("vCPU %s at rip %s: neither kernel text (from %#x) nor user space (below %#x)", m[1], m[2], uint64(kernelText), uint64(userEnd))
		}
		found[m[1]] = true
	}
	if !found["0"] || !found["1"] {
		t.Errorf("want a line for vCPU 0 and vCPU 1 on stderr:\n%s", out)
	}
	for _, bad := range []string{"outside guest RAM", "did not leave KVM_RUN"} {
		if strings.Contains(out, bad) {
			t.Errorf("stderr says %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "goroutine ") {
		t.Errorf("no goroutine dump after the vCPUs:\n%s", out)
	}
}
