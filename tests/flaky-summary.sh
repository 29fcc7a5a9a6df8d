#!/bin/sh
# flaky-summary.sh STATE: print the boot tests that tests/boot-tests.sh
# recorded as FLAKY in the state directory STATE (failed, then passed when
# run again alone in the sandbox; or one boot of a test that replaced it,
# TEST-bootN), each with the end of its first failure, or a line saying
# there were none. More than two FLAKY tests in one run
# fail it: a sandbox fault that often hides a regression as easily as it
# explains one. make boot-test runs this last, on the host, after every
# attempt of the sandbox.
set -u
state=$1
n=0
for f in "$state"/flaky/*; do
	[ -f "$f" ] && n=$((n + 1))
done
if [ "$n" = 0 ]; then
	echo "== FLAKY summary: none (no boot test needed a rerun)"
	exit 0
fi
echo "== FLAKY summary: $n boot test(s) (or single boots) failed, then passed when run again:"
for f in "$state"/flaky/*; do
	echo "-- FLAKY: $(basename "$f"), its first failure:"
	cat "$f"
done
if [ "$n" -gt 2 ]; then
	echo "== FAIL: $n FLAKY boot tests or boots in one run (at most 2 pass)"
	exit 1
fi
echo "== $n FLAKY boot test(s): the run passes, but read their failures above"
