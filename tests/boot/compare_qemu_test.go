package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompareQEMU runs `govmm compare --runs 1 --only start,memory` with
// govmm and the classic VM, qemu, which boots the same kernel, initramfs
// and root image under QEMU's PC machine: both start the bundle's process
// through the agent ports, and the table has QEMU's start, teardown and
// memory figures beside govmm's.
func TestCompareQEMU(t *testing.T) {
	e := testEnv(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatalf("QEMU is not installed (make test installs qemu-system-x86): %v", err)
	}
	bundle := busyboxBundle(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "compare", "--runs", "1", "--only", "start,memory", "--runtimes", "govmm,qemu",
		"--bundle", bundle, "--kernel", e.kernel, "--initrd", e.initrd, "--json", filepath.Join(out, "compare.json"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runOrDiagnose(t, ctx, cmd); err != nil {
		t.Fatalf("govmm compare: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	table := stdout.String()
	t.Logf("govmm compare:\n%s", table)
	if !strings.Contains(table, "qemu/govmm") {
		t.Errorf("the table has no qemu/govmm ratio")
	}
	b, err := os.ReadFile(filepath.Join(out, "compare.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep compareReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("compare.json does not parse: %v", err)
	}
	figure := map[string]float64{}
	for _, r := range rep.Rows {
		for rt, ss := range r.Samples {
			if len(ss) == 1 && ss[0] != nil && !math.IsNaN(*ss[0]) {
				figure[r.Key+" "+rt] = *ss[0]
			}
		}
	}
	for _, want := range []string{"start.ready qemu", "start.exit qemu", "start.teardown qemu", "memory.pss qemu", "memory.overhead qemu"} {
		if figure[want] <= 0 {
			t.Errorf("compare.json: %s is %v, want a positive figure", want, figure[want])
		}
	}
	// Guest RAM is told apart from the VMM's own memory in both.
	for _, rt := range []string{"govmm", "qemu"} {
		if o, p := figure["memory.overhead "+rt], figure["memory.pss "+rt]; o >= p {
			t.Errorf("%s: overhead outside guest RAM %.1f MiB is not below its PSS %.1f MiB", rt, o, p)
		}
	}
}
