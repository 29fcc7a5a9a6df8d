#!/bin/sh
# fuzz.sh TIME: run every Go fuzz target in the module for TIME each, one
# after another (e.g. 100000x in `make test`, 10000000x under `make fuzz`),
# then print a table: package, target, executions and the new failing input
# the target wrote to its package's testdata/fuzz (0 if none). A new
# failing input, or a target that fails otherwise, fails the run once every
# target has had its turn.
set -eu
fuzztime=$1
go=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for pkg in $($go list ./...); do
	for target in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== fuzz $pkg $target ($fuzztime)"
		{
			rc=0
			$go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg" 2>&1 || rc=$?
			echo "$rc" >"$tmp/rc"
		} | tee "$tmp/log"
		execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' "$tmp/log" | tail -n 1)
		crasher=$(sed -n 's/.*Failing input written to \(testdata[^ ]*\).*/\1/p' "$tmp/log" | tail -n 1)
		if [ "$(cat "$tmp/rc")" != 0 ]; then
			status=1
			crasher=${crasher:-"failed: see its output above"}
		fi
		printf '%s\t%s\t%s\t%s\n' "$pkg" "$target" "${execs:-?}" "${crasher:-0}" >>"$tmp/summary"
	done
done
echo
printf '%-50s %-24s %12s  %s\n' package target executions "new crashers"
while IFS="$(printf '\t')" read -r pkg target execs crasher; do
	printf '%-50s %-24s %12s  %s\n' "$pkg" "$target" "$execs" "$crasher"
done <"$tmp/summary"
exit "$status"
