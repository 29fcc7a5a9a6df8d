package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"image"
	_ "image/png" // decodes the chart
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// busyboxBundle is an OCI bundle whose root file system is Debian's static
// busybox and its applets: enough for the shell jobs of govmm compare.
func busyboxBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static (make test installs it): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "echo", "sleep", "true", "cat", "head", "sha256sum", "dd", "seq"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	spec := runcSpec()
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"sh", "-c", "echo ready"}
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// compareReport is the part of compare.json the test reads.
type compareReport struct {
	Runtimes []string `json:"runtimes"`
	Rows     []struct {
		Key     string                `json:"key"`
		Unit    string                `json:"unit"`
		Samples map[string][]*float64 `json:"samples"`
	} `json:"rows"`
}

// TestCompareStartAndMemory runs `govmm compare --runs 1 --only
// start,memory` with govmm, the classic VM (qemu: QEMU's PC machine booting
// the same kernel, initramfs and root image) and runc, as a user would, and
// checks what it leaves: a table with the runtimes and the ratios, JSON
// whose start and memory figures are numbers, with guest RAM told apart
// from each VMM's own memory, and a chart in SVG and PNG.
func TestCompareStartAndMemory(t *testing.T) {
	e := testEnv(t)
	for _, tool := range []string{"runc", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test installs it): %v", tool, err)
		}
	}
	bundle := busyboxBundle(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "compare", "--runs", "1", "--only", "start,memory", "--runtimes", "govmm,qemu,runc",
		"--bundle", bundle, "--kernel", e.kernel, "--initrd", e.initrd, "--out", out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runOrDiagnose(t, ctx, cmd); err != nil {
		t.Fatalf("govmm compare: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	table := stdout.String()
	t.Logf("govmm compare:\n%s", table)
	for _, want := range []string{"govmm", "runc", "govmm/runc", "qemu/runc", "launch → first stdout line", "PSS"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table has no %q", want)
		}
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
	for _, want := range []string{"start.ready", "start.exit", "start.teardown", "memory.pss"} {
		for _, rt := range []string{"govmm", "qemu", "runc"} {
			if figure[want+" "+rt] <= 0 {
				t.Errorf("compare.json: %s %s is %v, want a positive figure", want, rt, figure[want+" "+rt])
			}
		}
	}
	// govmm's bare boot, the yardstick of its bundle start, is measured.
	// (Which of the two is faster is the benchmark's to say: one sample
	// of each under the sandbox's emulation can fall either way.)
	if b := figure["start.boot govmm"]; b <= 0 {
		t.Errorf("govmm: bare boot to init %.0f ms, want a positive figure", b)
	}
	// The bundle start's phases, each measured, add up to the start
	// (the host reads the first line a little after govmm wrote it).
	var sum float64
	for _, ph := range []string{"host", "kernel", "setup", "exec"} {
		v := figure["start.phase."+ph+" govmm"]
		if v <= 0 {
			t.Errorf("compare.json: start.phase.%s govmm is %v, want a positive figure", ph, v)
		}
		sum += v
	}
	if r := figure["start.ready govmm"]; sum < 0.9*r || sum > r {
		t.Errorf("govmm's start phases add up to %.0f ms, want within 10%% below its first line %.0f ms", sum, r)
	}
	// Guest RAM is told apart from each VMM's own memory.
	for _, rt := range []string{"govmm", "qemu"} {
		if o, p := figure["memory.overhead "+rt], figure["memory.pss "+rt]; o <= 0 || o >= p {
			t.Errorf("%s: overhead outside guest RAM %.1f MiB, want above 0 and below its PSS %.1f MiB", rt, o, p)
		}
	}

	svg, err := os.ReadFile(filepath.Join(out, "compare.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(svg, &root); err != nil || root.XMLName.Local != "svg" {
		t.Errorf("compare.svg is not an SVG document: root %q, %v", root.XMLName.Local, err)
	}
	f, err := os.Open(filepath.Join(out, "compare.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, format, err := image.Decode(f)
	if err != nil || format != "png" || img.Bounds().Dx() < 100 {
		t.Errorf("compare.png: format %q, %v", format, err)
	}
	csv, err := os.ReadFile(filepath.Join(out, "compare.csv"))
	if err != nil || !strings.Contains(string(csv), "start.ready") {
		t.Errorf("compare.csv: %v\n%s", err, csv)
	}
}
