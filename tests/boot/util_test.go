package boot

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// procStatus reads the numbers of /proc/PID/status (pid "self" for this
// process) by key, "VmRSS" or "Threads": each line's first field, in the
// file's unit (kB for sizes). Lines whose value is not a number are left out.
func procStatus(pid string) (map[string]int, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return nil, err
	}
	st := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if f := strings.Fields(v); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				st[k] = n
			}
		}
	}
	return st, nil
}

// syncBuffer is a console the test reads while the VM writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// killGrace is how long a killed govmm may take to go.
const killGrace = 30 * time.Second

// runOrDiagnose runs cmd, which ctx kills. If the process outlives the kill
// by killGrace, it is stuck in the kernel (a KVM ioctl that does not return,
// say): the test fails with what the kernel says the process is doing,
// instead of hanging the suite. The process is left behind.
func runOrDiagnose(t *testing.T, ctx context.Context, cmd *exec.Cmd) error {
	t.Helper()
	// On timeout, SIGQUIT first: the Go runtime prints every goroutine's
	// stack to stderr, which the failure shows. Past WaitDelay, SIGKILL.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = killGrace
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(2 * killGrace):
	}
	t.Fatalf("govmm (pid %d) did not exit %v after SIGKILL:\n%s", cmd.Process.Pid, killGrace, procState(cmd.Process.Pid))
	return nil
}

// procState is the state, wait channel and kernel stack of every thread.
func procState(pid int) string {
	var b strings.Builder
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "State:") {
			b.WriteString(line + "\n")
		}
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, task := range tasks {
		wchan, _ := os.ReadFile(filepath.Join(task, "wchan"))
		stack, _ := os.ReadFile(filepath.Join(task, "stack"))
		fmt.Fprintf(&b, "thread %s wchan %s\n%s", filepath.Base(task), wchan, stack)
	}
	return b.String()
}

// console is a govmm run the test follows line by line on its stdout while
// stderr collects; the test ends the process itself (a signal, a kill).
type console struct {
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stderr *strings.Builder
}

// startGovmm starts `govmm run` with args; ctx kills it.
func startGovmm(t *testing.T, ctx context.Context, e env, args ...string) console {
	t.Helper()
	cmd := exec.CommandContext(ctx, e.bin, append([]string{"run"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := console{cmd: cmd, lines: bufio.NewScanner(stdout), stderr: &strings.Builder{}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// recordFlaky puts a sandbox fault that a test worked around into the run's
// FLAKY summary (tests/flaky-summary.sh), as tests/boot-tests.sh does for a
// test that passed when run again: GOVMM_BOOT_STATE/flaky/NAME holds what
// happened. Without GOVMM_BOOT_STATE (a test run by hand) the log has it.
func recordFlaky(t *testing.T, name, what string) {
	t.Helper()
	state := os.Getenv("GOVMM_BOOT_STATE")
	if state == "" {
		return
	}
	dir := filepath.Join(state, "flaky")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("record FLAKY %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(what+"\n"), 0o644); err != nil {
		t.Fatalf("record FLAKY %s: %v", name, err)
	}
}
