package caps

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const helperEnv = "GOVMM_CAPS_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		err := DropAll()
		if err != nil && err != ErrOneThread {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		// Every thread's sets, as /proc shows them.
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, t := range tasks {
			f, err := os.Open("/proc/self/task/" + t.Name() + "/status")
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "Cap") {
					fmt.Printf("%s %s\n", t.Name(), sc.Text())
				}
			}
			f.Close()
		}
		if err == ErrOneThread {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A process that drops its capabilities has none left, on any thread.
func TestDropAllLeavesNoCapability(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		t.Skip("a cgo build (-race) drops on one thread only: run without -race (make unit does)")
	}
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 {
		t.Fatalf("too few capability lines:\n%s", out)
	}
	for _, l := range lines {
		f := strings.Fields(l) // tid CapXxx: value
		if len(f) != 3 {
			t.Fatalf("odd line %q", l)
		}
		if f[1] == "CapBnd:" && os.Geteuid() != 0 {
			continue // only a privileged process may empty it
		}
		if strings.Trim(f[2], "0") != "" {
			t.Errorf("thread %s: %s %s, want none", f[0], f[1], f[2])
		}
	}
}
