// Package scripts tests the shell scripts under tests/ that the boot tests
// depend on, with stand-in programs in place of the test binaries.
package scripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runBounded runs tests/gotest-bounded.sh on a stand-in test binary, a sh
// script, with a grace of two seconds. It returns the exit status, what the
// script printed and what it kept in the log.
func runBounded(t *testing.T, script string) (status int, out, log string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "test.log")
	cmd := exec.Command("../gotest-bounded.sh", logPath, "sh", "-c", script)
	cmd.Env = append(os.Environ(), "GOVMM_EXIT_GRACE=2")
	status, out = runCmd(t, cmd, 30*time.Second)
	l, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	return status, out, string(l)
}

// runCmd runs cmd, killed after timeout, and returns its exit status and
// output (stdout and stderr).
func runCmd(t *testing.T, cmd *exec.Cmd, timeout time.Duration) (status int, out string) {
	t.Helper()
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), string(b)
	case err != nil:
		t.Fatalf("%s: %v\n%s", cmd.Path, err, b)
	}
	return 0, string(b)
}

func TestBoundedPassesOnTheStatusOfABinaryThatExits(t *testing.T) {
	for _, c := range []struct {
		script string
		status int
	}{
		{"echo '--- PASS: TestA (0.00s)'; echo PASS", 0},
		{"echo '--- FAIL: TestA (0.00s)'; echo FAIL; exit 1", 1},
		{"echo 'panic: boom'; exit 2", 2},
		// A verdict line followed by more output within the grace, and a
		// binary that takes longer than the grace before its verdict, are not
		// cut short.
		{"echo PASS; sleep 1; echo more; exit 3", 3},
		{"sleep 3; echo PASS", 0},
	} {
		status, out, log := runBounded(t, c.script)
		if status != c.status {
			t.Errorf("%q: status %d, want %d\n%s", c.script, status, c.status, out)
		}
		if strings.Contains(out, "had not exited") {
			t.Errorf("%q: reported as stuck though it exited:\n%s", c.script, out)
		}
		if !strings.HasSuffix(out, log) || log == "" {
			t.Errorf("%q: printed %q, but the log holds %q", c.script, out, log)
		}
	}
}

func TestBoundedGoesOnWithTheVerdictOfABinaryThatDoesNotExit(t *testing.T) {
	for _, c := range []struct {
		verdict string
		status  int
	}{{"PASS", 0}, {"FAIL", 1}} {
		pidFile := filepath.Join(t.TempDir(), "pid")
		// The stand-in prints its verdict, then hangs without exiting.
		script := "echo $$ >" + pidFile + "; echo '--- " + c.verdict + ": TestA (0.00s)'; echo " + c.verdict + "; exec sleep 600"
		start := time.Now()
		status, out, _ := runBounded(t, script)
		if status != c.status {
			t.Errorf("%s then no exit: status %d, want %d\n%s", c.verdict, status, c.status, out)
		}
		if !strings.Contains(out, "printed its verdict ("+c.verdict+") but had not exited 2s later") {
			t.Errorf("%s then no exit: no report of the stuck binary:\n%s", c.verdict, out)
		}
		if !strings.Contains(out, "sleep 600") {
			t.Errorf("%s then no exit: the report does not list the stuck process:\n%s", c.verdict, out)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("%s then no exit: took %v with a 2 s grace", c.verdict, d)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		// The stuck binary was killed rather than left behind.
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("%s then no exit: process %d is still running", c.verdict, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
