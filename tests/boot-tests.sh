#!/bin/sh
# boot-tests.sh: the tests that need KVM, run from the repository root with
# the GOVMM_* variables set (make boot-test does both, on this machine's
# KVM or inside the sandbox): the kvm package's, internal/machine's, then
# the boot tests.
#
# Inside the nested-KVM sandbox (GOVMM_IN_SANDBOX=1, which bin/sandbox
# sets), a boot test that fails is run again, alone, up to three times, and
# is recorded as FLAKY if one of those runs passes: the sandbox now and then
# wedges a guest (its emulated SVM hands back the sandbox kernel's
# registers for the guest's) and one such event must not hide the other
# forty results. A test that fails four times fails the run. On real KVM
# nothing is rerun: a failure there is a failure.
#
# Every FLAKY test is written, with the end of its first failure, to
# GOVMM_BOOT_STATE/flaky/; tests/flaky-summary.sh prints them once the
# sandbox has returned, and fails the run if there are more than two.
#
# Every test binary runs under tests/gotest-bounded.sh, which goes on with
# the binary's printed verdict if the binary does not exit after printing it
# (the same fault can wedge one sandbox CPU under a thread of the exiting
# process).
#
# GOVMM_BOOT_STATE, a directory outside the sandbox, makes the run
# resumable: what passed is recorded there as it passes, and when the
# sandbox's own kernel dies and bin/sandbox runs this script again, the
# packages and boot tests that passed are not run twice.
#
# GOVMM_TEST_BIN_DIR (default bin) is where kvmprobe and the test binaries
# are; the script's own tests put stand-ins there.
set -u
state=${GOVMM_BOOT_STATE:-}
bin=${GOVMM_TEST_BIN_DIR:-bin}

# passed says whether a package's tests passed in an earlier attempt.
passed() { [ -n "$state" ] && grep -qx "$1" "$state/packages" 2>/dev/null; }
mark() { if [ -n "$state" ]; then echo "$1" >>"$state/packages"; fi; }

# failure prints the end of test $1's first failure in log $2 ($log if not
# given): from its "=== RUN" line to its "--- FAIL" line and the indented
# lines under it (subtests, messages), at most 40 lines.
failure() {
	awk -v t="$1" '
	$0 == "=== RUN   " t { on = 1 }
	on && index($0, "--- FAIL: " t " ") == 1 { print; under = 1; next }
	under && /^[ \t]/ { print; next }
	under { exit }
	on { print }
	' "${2:-$log}" | tail -n 40
}

# flaky records test $1 as FLAKY in the state directory, with its first
# failure (from log $2, $log if not given), and as passed, so that a
# resumed run does not run it again.
flaky() {
	if [ -z "$state" ]; then
		return
	fi
	mkdir -p "$state/flaky"
	failure "$1" "${2:-$log}" >"$state/flaky/$1"
	echo "--- PASS: $1 (rerun)" >>"$state/boot.rerun.log"
}

"$bin/kvmprobe" || exit 1
for pkg in kvm machine; do
	if passed "$pkg"; then
		echo "== $pkg package: passed in an earlier attempt"
		continue
	fi
	plog=${TMPDIR:-/tmp}/$pkg.$$.log
	tests/gotest-bounded.sh "$plog" "$bin/$pkg.test" -test.v
	pstatus=$?
	rm -f "$plog"
	if [ "$pstatus" != 0 ]; then
		exit 1
	fi
	mark "$pkg"
done

# Boot tests that passed in earlier attempts (top-level "--- PASS:" lines of
# their logs) are skipped. Those that failed in an attempt the sandbox did
# not finish run again, and are FLAKY if they pass now.
skip=""
earlier_failed=""
if [ -n "$state" ] && ls "$state"/boot.*.log >/dev/null 2>&1; then
	done_tests=$(sed -n 's/^--- PASS: \([A-Za-z0-9_]*\) .*/\1/p' "$state"/boot.*.log | sort -u | tr '\n' '|')
	if [ -n "$done_tests" ]; then
		skip="^(${done_tests%|})\$"
		echo "== resuming: these boot tests passed in an earlier attempt: ${done_tests%|}"
	fi
	earlier_failed=$(sed -n 's/^--- FAIL: \([A-Za-z0-9_]*\) .*/\1/p' "$state"/boot.*.log | sort -u | tr '\n' ' ')
fi

# The whole binary's bound: about twice what the boot tests take in the
# sandbox on an idle 2-core machine.
timeout=30m

# Named by time too: a sandbox booted again may give this script the same
# PID, and an earlier attempt's log must survive.
log=${state:-${TMPDIR:-/tmp}}/boot.$(date +%s).$$.log
if [ -n "$skip" ]; then
	tests/gotest-bounded.sh "$log" "$bin/boot.test" -test.v -test.timeout "$timeout" -test.skip "$skip"
else
	tests/gotest-bounded.sh "$log" "$bin/boot.test" -test.v -test.timeout "$timeout"
fi
status=$?
for t in $earlier_failed; do
	if grep -q "^--- PASS: $t " "$log"; then
		first=$(grep -l "^--- FAIL: $t " "$state"/boot.*.log | head -n 1)
		echo "== FLAKY: $t failed in an attempt the sandbox did not finish, then passed"
		flaky "$t" "$first"
	fi
done
failed=$(sed -n 's/^--- FAIL: \([A-Za-z0-9_]*\) .*/\1/p' "$log" | sort -u | tr '\n' ' ')
failed=${failed% }
if [ -z "$state" ]; then
	trap 'rm -f "$log"' EXIT
fi
if [ "$status" = 0 ]; then
	exit 0
fi
# A binary stopped by its timeout ended in the middle of a test and ran none
# after it; rerunning the tests that failed before then would pass the run
# without their verdicts.
if grep -q '^panic: test timed out' "$log"; then
	running=$(sed -n '/^panic: test timed out/,/^$/s/^[[:space:]]*\(Test[A-Za-z0-9_]*\) (.*/\1/p' "$log" | tr '\n' ' ')
	running=${running% }
	echo "== boot tests stopped at their $timeout timeout in ${running:-a test not named}; failed before it: ${failed:-none}. Not rerun: the tests after it never ran"
	exit 1
fi
if [ -z "$failed" ]; then
	echo "== boot tests failed with status $status and no failed test named (a timeout?): not rerun"
	exit "$status"
fi
if [ "${GOVMM_IN_SANDBOX:-}" != 1 ]; then
	echo "== boot tests failed: $failed (on real KVM a failed test is not rerun)"
	exit 1
fi
# Each failed test runs again alone, up to three times: the sandbox's fault
# hit the 64 MiB network test in about half its runs on a bad afternoon, so
# one rerun was not enough to tell it from a real failure.
for attempt in 1 2 3; do
	echo "== boot tests failed: $failed; running them again alone ($attempt of 3) to tell a sandbox fault from a real failure"
	still=""
	for t in $failed; do
		if tests/gotest-bounded.sh "$log.rerun" "$bin/boot.test" -test.v -test.timeout 12m -test.run "^$t\$"; then
			echo "== FLAKY: $t failed, then passed alone (its earlier failures are above)"
			flaky "$t"
		else
			still="$still $t"
		fi
	done
	failed=${still# }
	rm -f "$log.rerun"
	if [ -z "$failed" ]; then
		exit 0
	fi
done
echo "== FAIL: failed four times: $failed"
exit 1
