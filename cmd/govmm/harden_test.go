package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// After hardenProcess no thread of the process gains privileges through
// exec (NoNewPrivs in each thread's status), and the process is not
// dumpable. A cgo build (go test -race is one) can only do this thread,
// and says so.
func TestHardenProcess(t *testing.T) {
	err := hardenProcess()
	if d, derr := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); derr != nil || d != 0 {
		t.Errorf("PR_GET_DUMPABLE = %d, %v; want 0", d, derr)
	}
	if errors.Is(err, errOneThread) {
		if v, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); v != 1 {
			t.Errorf("cgo build: no_new_privs not even on this thread")
		}
		t.Logf("cgo build: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, path := range tasks {
		status, err := os.ReadFile(path)
		if err != nil {
			continue // the thread has exited
		}
		if !strings.Contains(string(status), "NoNewPrivs:\t1") {
			t.Errorf("%s: NoNewPrivs is not 1", path)
		}
	}
}
