#!/bin/sh
# boot-tests.sh: the tests that need KVM, run from the repository root with
# the GOVMM_* variables set (make boot-test does both, on this machine's
# KVM or inside the sandbox): the kvm package's, internal/machine's, then
# the boot tests.
#
# A boot test that fails is run again, alone, up to three times, and is
# printed with the word FLAKY if one of those runs passes: the nested-KVM
# sandbox now and then wedges a guest (its emulated SVM hands back the
# sandbox kernel's registers for the guest's; see README) and one such event
# must not hide the other forty results. A test that fails four times fails
# the run.
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
set -u
state=${GOVMM_BOOT_STATE:-}

# passed says whether a package's tests passed in an earlier attempt.
passed() { [ -n "$state" ] && grep -qx "$1" "$state/packages" 2>/dev/null; }
mark() { if [ -n "$state" ]; then echo "$1" >>"$state/packages"; fi; }

bin/kvmprobe || exit 1
for pkg in kvm machine; do
	if passed "$pkg"; then
		echo "== $pkg package: passed in an earlier attempt"
		continue
	fi
	plog=${TMPDIR:-/tmp}/$pkg.$$.log
	tests/gotest-bounded.sh "$plog" "bin/$pkg.test" -test.v
	pstatus=$?
	rm -f "$plog"
	if [ "$pstatus" != 0 ]; then
		exit 1
	fi
	mark "$pkg"
done

# Boot tests that passed in earlier attempts (top-level "--- PASS:" lines of
# their logs) are skipped.
skip=""
if [ -n "$state" ] && ls "$state"/boot.*.log >/dev/null 2>&1; then
	done_tests=$(sed -n 's/^--- PASS: \([A-Za-z0-9_]*\) .*/\1/p' "$state"/boot.*.log | sort -u | tr '\n' '|')
	if [ -n "$done_tests" ]; then
		skip="^(${done_tests%|})\$"
		echo "== resuming: these boot tests passed in an earlier attempt: ${done_tests%|}"
	fi
fi

log=${state:-${TMPDIR:-/tmp}}/boot.$$.log
if [ -n "$skip" ]; then
	tests/gotest-bounded.sh "$log" bin/boot.test -test.v -test.timeout 30m -test.skip "$skip"
else
	tests/gotest-bounded.sh "$log" bin/boot.test -test.v -test.timeout 30m
fi
status=$?
failed=$(sed -n 's/^--- FAIL: \([A-Za-z0-9_]*\) .*/\1/p' "$log" | sort -u | tr '\n' ' ')
if [ -z "$state" ]; then
	rm -f "$log"
fi
if [ "$status" = 0 ]; then
	exit 0
fi
if [ -z "$failed" ]; then
	echo "== boot tests failed with status $status and no failed test named (a timeout?): not rerun"
	exit "$status"
fi
# Each failed test runs again alone, up to three times: the sandbox's fault
# hit the 64 MiB network test in about half its runs on a bad afternoon, so
# one rerun was not enough to tell it from a real failure.
for attempt in 1 2 3; do
	echo "== boot tests failed: $failed; running them again alone ($attempt of 3) to tell a sandbox fault from a real failure"
	still=""
	for t in $failed; do
		if tests/gotest-bounded.sh "$log.rerun" bin/boot.test -test.v -test.timeout 12m -test.run "^$t\$"; then
			echo "== FLAKY: $t failed, then passed alone (its earlier failures are above)"
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
