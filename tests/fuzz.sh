#!/bin/sh
# fuzz.sh TIME: run every Go fuzz target in the module for TIME each, one
# after another (e.g. 100000x in `make test`, 10000000x under `make fuzz`),
# then print a table: package, target, executions and the new failing input
# the target wrote to its package's testdata/fuzz (0 if none). A new
# failing input, or a target that fails otherwise, fails the run once every
# target has had its turn.
#
# FUZZ_TARGETS, if set, runs only the targets it lists, separated by
# spaces: a name (FuzzXZ, in whichever package has it) or a package and a
# name (./boot:FuzzXZ, or github.com/govmm/govmm/boot:FuzzXZ). A long run
# can so be split in parts, or resumed with the targets not yet done. A
# listed target that does not exist fails the run before any fuzzing.
set -eu
fuzztime=$1
go=${GO:-go}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The targets to run, "package target" a line, in the module's order;
# only packages whose tests define a Fuzz function are built to list them.
$go list -f '{{$d := .Dir}}{{.ImportPath}}{{range .TestGoFiles}} {{$d}}/{{.}}{{end}}{{range .XTestGoFiles}} {{$d}}/{{.}}{{end}}' ./... |
	while read -r pkg files; do
		if [ -n "$files" ] && grep -q '^func Fuzz' $files; then
			$go test -list '^Fuzz' "$pkg" </dev/null | grep '^Fuzz' | sed "s|^|$pkg |" || true
		fi
	done >"$tmp/all"
if [ -n "${FUZZ_TARGETS:-}" ]; then
	: >"$tmp/wanted"
	for item in $FUZZ_TARGETS; do
		pkg=
		case $item in
		*:*) pkg=$($go list "${item%:*}") ;;
		esac
		awk -v pkg="$pkg" -v target="${item##*:}" '(pkg == "" || $1 == pkg) && $2 == target' "$tmp/all" >"$tmp/match"
		if [ ! -s "$tmp/match" ]; then
			echo "fuzz.sh: FUZZ_TARGETS names $item, which is no fuzz target here" >&2
			exit 2
		fi
		cat "$tmp/match" >>"$tmp/wanted"
	done
	# In the module's order, each target once.
	awk 'NR == FNR { wanted[$0] = 1; next } $0 in wanted' "$tmp/wanted" "$tmp/all" >"$tmp/run"
else
	cp "$tmp/all" "$tmp/run"
fi

status=0
: >"$tmp/summary"
while read -r pkg target; do
	echo "== fuzz $pkg $target ($fuzztime)"
	{
		rc=0
		$go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg" 2>&1 </dev/null || rc=$?
		echo "$rc" >"$tmp/rc"
	} | tee "$tmp/log"
	execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' "$tmp/log" | tail -n 1)
	crasher=$(sed -n 's/.*Failing input written to \(testdata[^ ]*\).*/\1/p' "$tmp/log" | tail -n 1)
	if [ "$(cat "$tmp/rc")" != 0 ]; then
		status=1
		crasher=${crasher:-"failed: see its output above"}
	fi
	printf '%s\t%s\t%s\t%s\n' "$pkg" "$target" "${execs:-?}" "${crasher:-0}" >>"$tmp/summary"
done <"$tmp/run"
echo
printf '%-50s %-24s %12s  %s\n' package target executions "new crashers"
while IFS="$(printf '\t')" read -r pkg target execs crasher; do
	printf '%-50s %-24s %12s  %s\n' "$pkg" "$target" "$execs" "$crasher"
done <"$tmp/summary"
exit "$status"
