package compare

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// named is a runtime that only has a name: enough for runOnce.
type named struct {
	Runtime
	name string
}

func (n named) Name() string { return n.name }

// countingStep is a step that returns its call count, and fails on the
// second call, like a run whose guest was lost.
func countingStep(calls *int) step {
	return step{label: "start", run: func(context.Context, Runtime) (map[string]float64, error) {
		*calls++
		v := map[string]float64{"start.ready": float64(*calls), "start.exit": math.NaN()}
		if *calls == 2 {
			return v, errors.New("guest lost")
		}
		return v, nil
	}}
}

// A comparison that dies part-way and is run again with the same flags
// does not run again what it had finished, and gets back the same values
// and failures; what was not finished is run.
func TestJournalResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compare.journal")
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	rt := named{name: "govmm"}
	calls := 0
	s := countingStep(&calls)

	j, err := openJournal(path, "plan-a", start)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if _, err := runOnce(context.Background(), j, s, rt, i); (err != nil) != (i == 2) {
			t.Fatalf("run %d: err %v", i, err)
		}
	}
	j.close() // the machine dies here

	j, err = openJournal(path, "plan-a", start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if !j.started.Equal(start) {
		t.Errorf("started %v after resuming, want the first start %v", j.started, start)
	}
	v1, err1 := runOnce(context.Background(), j, s, rt, 1)
	v2, err2 := runOnce(context.Background(), j, s, rt, 2)
	if calls != 2 {
		t.Fatalf("resumed runs 1 and 2 ran the trial again: %d calls, want 2", calls)
	}
	if v1["start.ready"] != 1 || v2["start.ready"] != 2 || err1 != nil {
		t.Errorf("resumed run 1 = %v, %v; run 2 = %v; want ready 1, no error, ready 2", v1, err1, v2)
	}
	if !math.IsNaN(v1["start.exit"]) {
		t.Errorf("a NaN (failed measure) came back as %v", v1["start.exit"])
	}
	if err2 == nil || err2.Error() != "guest lost" {
		t.Errorf("resumed run 2's failure = %v, want guest lost", err2)
	}
	v3, err := runOnce(context.Background(), j, s, rt, 3)
	if err != nil || calls != 3 || v3["start.ready"] != 3 {
		t.Errorf("run 3 after resuming: %v, %v, calls %d; want it run", v3, err, calls)
	}
}

// A line cut short by the machine dying is dropped and its run redone; the
// journal stays readable after more runs are added.
func TestJournalDropsACutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compare.journal")
	j, err := openJournal(path, "plan-a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := j.record("cpu", "runc", 1, map[string]float64{"cpu.wall": 7}, nil); err != nil {
		t.Fatal(err)
	}
	j.f.WriteString(`{"step":"cpu","runtime":"runc","run":2,"val`)
	j.close()

	j, err = openJournal(path, "plan-a", time.Now())
	if err != nil {
		t.Fatalf("reopening a journal with a cut line: %v", err)
	}
	if _, ok := j.lookup("cpu", "runc", 2); ok {
		t.Error("the cut run counts as done")
	}
	if err := j.record("cpu", "runc", 2, map[string]float64{"cpu.wall": 8}, nil); err != nil {
		t.Fatal(err)
	}
	j.close()
	j, err = openJournal(path, "plan-a", time.Now())
	if err != nil {
		t.Fatalf("reopening after a run was added over the cut line: %v", err)
	}
	defer j.close()
	for run, want := range map[int]float64{1: 7, 2: 8} {
		if o, ok := j.lookup("cpu", "runc", run); !ok || o.values["cpu.wall"] != want {
			t.Errorf("run %d: %v, %v; want cpu.wall %v", run, o.values, ok, want)
		}
	}
}

// Runs of another plan (other flags, another build) are never mixed into
// a table: the journal is refused, with the way out.
func TestJournalOfAnotherPlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compare.journal")
	j, err := openJournal(path, "plan-a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	j.close()
	if _, err := openJournal(path, "plan-b", time.Now()); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("a journal of another plan: %v, want an error saying to remove it", err)
	}
	if err := os.WriteFile(path, []byte("not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openJournal(path, "plan-a", time.Now()); err == nil || !strings.Contains(err.Error(), "not a govmm compare journal") {
		t.Errorf("a file that is no journal: %v", err)
	}
}

// The plan changes with what is measured: the flags and the VMs' binaries.
func TestPlanFollowsFlagsAndBinaries(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "govmm")
	os.WriteFile(bin, []byte("build 1"), 0o755)
	o := &Options{Runs: 3, Runtimes: []string{"govmm", "runc"}}
	p1, err := o.plan([]string{bin})
	if err != nil {
		t.Fatal(err)
	}
	o.Runs = 5
	p2, _ := o.plan([]string{bin})
	o.Runs = 3
	os.WriteFile(bin, []byte("build 2"), 0o755)
	p3, _ := o.plan([]string{bin})
	if p1 == p2 || p1 == p3 {
		t.Errorf("plans: %s (runs 3), %s (runs 5), %s (rebuilt): want all different", p1, p2, p3)
	}
	os.WriteFile(bin, []byte("build 1"), 0o755)
	if p4, _ := o.plan([]string{bin}); p4 != p1 {
		t.Errorf("the same flags and binary gave plans %s and %s", p1, p4)
	}
}

// An interrupted run (Ctrl-C) is not a result: it is not recorded, so the
// next comparison runs it.
func TestJournalSkipsInterruptedRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compare.journal")
	j, err := openJournal(path, "plan-a", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	ctx, cancel := context.WithCancel(context.Background())
	s := step{label: "memory", run: func(context.Context, Runtime) (map[string]float64, error) {
		cancel()
		return nil, context.Canceled
	}}
	runOnce(ctx, j, s, named{name: "runc"}, 1)
	if _, ok := j.lookup("memory", "runc", 1); ok {
		t.Error("an interrupted run was recorded as done")
	}
}

// --out puts the journal beside the report; --journal names another file.
func TestJournalDefault(t *testing.T) {
	o, err := ParseFlags([]string{"--out", "/tmp/x"}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Journal != "/tmp/x/compare.journal" {
		t.Errorf("journal with --out /tmp/x: %q", o.Journal)
	}
	o, _ = ParseFlags([]string{"--out", "/tmp/x", "--journal", "/tmp/j"}, &strings.Builder{})
	if o.Journal != "/tmp/j" {
		t.Errorf("--journal /tmp/j: %q", o.Journal)
	}
	o, _ = ParseFlags(nil, &strings.Builder{})
	if o.Journal != "" {
		t.Errorf("no --out, no --journal: %q", o.Journal)
	}
}
