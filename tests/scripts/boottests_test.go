package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeBootTest stands in for bin/boot.test: it runs the tests in
// $FAKE_TESTS ("name:mode ..."; mode pass, once (fails its first run) or
// always), honours -test.run and -test.skip, prints what go test -v prints
// and counts each test's runs in $FAKE_COUNTS/name.
const fakeBootTest = `#!/bin/sh
run= skip=
while [ $# -gt 0 ]; do
	case $1 in
	-test.run) run=$2; shift ;;
	-test.skip) skip=$2; shift ;;
	esac
	shift
done
status=0
for spec in $FAKE_TESTS; do
	name=${spec%%:*}
	mode=${spec#*:}
	if [ -n "$run" ] && ! echo "$name" | grep -Eq "$run"; then continue; fi
	if [ -n "$skip" ] && echo "$name" | grep -Eq "$skip"; then continue; fi
	n=$(cat "$FAKE_COUNTS/$name" 2>/dev/null || echo 0)
	n=$((n + 1))
	echo $n >"$FAKE_COUNTS/$name"
	echo "=== RUN   $name"
	echo "    boot_test.go:10: booting"
	if [ "$mode" = always ] || { [ "$mode" = once ] && [ $n = 1 ]; }; then
		echo "    boot_test.go:42: guest said: $name broke in run $n"
		echo "--- FAIL: $name (1.00s)"
		echo "    --- FAIL: $name/sub (0.50s)"
		status=1
	else
		echo "--- PASS: $name (1.00s)"
	fi
done
if [ $status = 0 ]; then echo PASS; else echo FAIL; fi
exit $status
`

// bootRun is one run of tests/boot-tests.sh on stand-in binaries, then of
// tests/flaky-summary.sh on its state directory, as make boot-test does.
type bootRun struct {
	status, summaryStatus int
	out, summary          string
	runs                  map[string]int // how often each boot test ran
}

type bootFixture struct {
	bin, counts, state, tmp string
}

func newBootFixture(t *testing.T) *bootFixture {
	t.Helper()
	d := t.TempDir()
	f := &bootFixture{bin: filepath.Join(d, "bin"), counts: filepath.Join(d, "counts"),
		state: filepath.Join(d, "state"), tmp: filepath.Join(d, "tmp")}
	for _, dir := range []string{f.bin, f.counts, f.state, f.tmp} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pass := "#!/bin/sh\necho '=== RUN   TestKVM'\necho '--- PASS: TestKVM (0.00s)'\necho PASS\n"
	for name, script := range map[string]string{
		"kvmprobe": "#!/bin/sh\nexit 0\n", "kvm.test": pass, "machine.test": pass, "boot.test": fakeBootTest,
	} {
		if err := os.WriteFile(filepath.Join(f.bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// run runs the scripts with the boot tests tests ("name:mode ...").
func (f *bootFixture) run(t *testing.T, inSandbox bool, tests string) bootRun {
	t.Helper()
	env := append(withoutEnv("GOVMM_IN_SANDBOX", "GOVMM_BOOT_STATE", "GOVMM_TEST_BIN_DIR", "TMPDIR"),
		"GOVMM_TEST_BIN_DIR="+f.bin, "GOVMM_BOOT_STATE="+f.state, "TMPDIR="+f.tmp,
		"GOVMM_EXIT_GRACE=2", "FAKE_TESTS="+tests, "FAKE_COUNTS="+f.counts)
	if inSandbox {
		env = append(env, "GOVMM_IN_SANDBOX=1")
	}
	var r bootRun
	r.status, r.out = runScript(t, env, "tests/boot-tests.sh")
	r.summaryStatus, r.summary = runScript(t, env, "tests/flaky-summary.sh", f.state)
	r.runs = map[string]int{}
	for _, spec := range strings.Fields(tests) {
		name, _, _ := strings.Cut(spec, ":")
		b, err := os.ReadFile(filepath.Join(f.counts, name))
		if err == nil {
			r.runs[name], _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	return r
}

// runScript runs a script from the repository root and returns its exit
// status and output.
func runScript(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = "../.."
	cmd.Env = env
	return runCmd(t, cmd, time.Minute)
}

func TestBootTestsRerunAFailedTestOnlyInTheSandbox(t *testing.T) {
	t.Parallel()
	const tests = "TestA:pass TestB:once"

	r := newBootFixture(t).run(t, false, tests)
	if r.status == 0 {
		t.Errorf("on real KVM, a boot test that failed once passed the run:\n%s", r.out)
	}
	if r.runs["TestB"] != 1 {
		t.Errorf("on real KVM, the failed test ran %d times, want 1 (no rerun):\n%s", r.runs["TestB"], r.out)
	}
	if strings.Contains(r.out, "FLAKY") || r.summaryStatus != 0 || !strings.Contains(r.summary, "FLAKY summary: none") {
		t.Errorf("on real KVM, a failure was called FLAKY:\n%s\nsummary (status %d):\n%s", r.out, r.summaryStatus, r.summary)
	}

	r = newBootFixture(t).run(t, true, tests)
	if r.status != 0 || r.summaryStatus != 0 {
		t.Errorf("in the sandbox, a test that failed once then passed failed the run (status %d, summary %d):\n%s\n%s",
			r.status, r.summaryStatus, r.out, r.summary)
	}
	if r.runs["TestB"] != 2 || r.runs["TestA"] != 1 {
		t.Errorf("in the sandbox, runs %v, want TestB twice and TestA once", r.runs)
	}
	// The summary names the test and shows its first failure, from its
	// message to its subtests' verdicts, and nothing of the passing test.
	for _, want := range []string{"FLAKY summary: 1 boot test", "-- FLAKY: TestB", "guest said: TestB broke in run 1",
		"--- FAIL: TestB (1.00s)", "--- FAIL: TestB/sub"} {
		if !strings.Contains(r.summary, want) {
			t.Errorf("the summary lacks %q:\n%s", want, r.summary)
		}
	}
	if strings.Contains(r.summary, "TestA") || strings.Contains(r.summary, "run 2") {
		t.Errorf("the summary shows more than TestB's first failure:\n%s", r.summary)
	}
}

func TestBootTestsFailATestThatFailsFourTimes(t *testing.T) {
	t.Parallel()
	r := newBootFixture(t).run(t, true, "TestA:pass TestC:always")
	if r.status == 0 {
		t.Errorf("a test that always fails passed the run:\n%s", r.out)
	}
	if r.runs["TestC"] != 4 {
		t.Errorf("TestC ran %d times, want 4 (once, then three reruns)", r.runs["TestC"])
	}
	if !strings.Contains(r.out, "failed four times: TestC") || !strings.Contains(r.summary, "FLAKY summary: none") {
		t.Errorf("want TestC reported as failed, not FLAKY:\n%s\n%s", r.out, r.summary)
	}
}

func TestBootTestsFailARunWithMoreThanTwoFlakyTests(t *testing.T) {
	t.Parallel()
	r := newBootFixture(t).run(t, true, "TestA:once TestB:once TestD:pass")
	if r.status != 0 || r.summaryStatus != 0 || !strings.Contains(r.summary, "FLAKY summary: 2 boot test") {
		t.Errorf("two FLAKY tests: status %d, summary status %d, want 0, 0 and a summary of two:\n%s", r.status, r.summaryStatus, r.summary)
	}

	r = newBootFixture(t).run(t, true, "TestA:once TestB:once TestC:once TestD:pass")
	if r.summaryStatus == 0 {
		t.Errorf("three FLAKY tests passed the run:\n%s", r.summary)
	}
	for _, want := range []string{"FLAKY summary: 3 boot test", "-- FLAKY: TestA", "-- FLAKY: TestB", "-- FLAKY: TestC", "3 FLAKY boot tests or boots in one run"} {
		if !strings.Contains(r.summary, want) {
			t.Errorf("the summary lacks %q:\n%s", want, r.summary)
		}
	}
}

// When the sandbox's kernel dies, bin/sandbox runs boot-tests.sh again
// with the same state: a test that was FLAKY is neither rerun nor
// forgotten.
func TestBootTestsKeepFlakyTestsAcrossSandboxAttempts(t *testing.T) {
	t.Parallel()
	f := newBootFixture(t)
	f.run(t, true, "TestA:pass TestB:once")
	r := f.run(t, true, "TestA:pass TestB:once TestE:pass")
	if r.status != 0 || r.runs["TestB"] != 2 || r.runs["TestA"] != 1 || r.runs["TestE"] != 1 {
		t.Errorf("second attempt: status %d, runs %v, want 0 with TestB twice, TestA and TestE once:\n%s", r.status, r.runs, r.out)
	}
	if !strings.Contains(r.summary, "FLAKY summary: 1 boot test") || !strings.Contains(r.summary, "-- FLAKY: TestB") {
		t.Errorf("the summary after two attempts:\n%s", r.summary)
	}
}

// A test that failed in an attempt the sandbox's kernel did not survive
// runs again in the next attempt, and is FLAKY when it passes there.
func TestBootTestsCountAFailureBeforeTheSandboxDiedAsFlaky(t *testing.T) {
	t.Parallel()
	f := newBootFixture(t)
	// What the first attempt left: TestA passed, TestB failed, then the
	// sandbox died in TestC, with no verdict.
	died := "=== RUN   TestA\n--- PASS: TestA (1.00s)\n=== RUN   TestB\n" +
		"    boot_test.go:42: guest said: TestB broke before the sandbox died\n--- FAIL: TestB (1.00s)\n=== RUN   TestC\n"
	if err := os.WriteFile(filepath.Join(f.state, "boot.1.7.log"), []byte(died), 0o644); err != nil {
		t.Fatal(err)
	}
	r := f.run(t, true, "TestA:pass TestB:pass TestC:pass")
	if r.status != 0 || r.runs["TestA"] != 0 || r.runs["TestB"] != 1 || r.runs["TestC"] != 1 {
		t.Errorf("resumed attempt: status %d, runs %v, want 0 with TestA skipped, TestB and TestC once:\n%s", r.status, r.runs, r.out)
	}
	if !strings.Contains(r.summary, "FLAKY summary: 1 boot test") || !strings.Contains(r.summary, "TestB broke before the sandbox died") {
		t.Errorf("the summary does not show TestB's failure before the sandbox died:\n%s", r.summary)
	}
}
