#!/bin/sh
# fuzz.sh TIME: run every Go fuzz target in the module for TIME each
# (e.g. 10s in `make test`, 5m under `make fuzz`). New failing inputs are
# written to the package's testdata/fuzz and fail the run.
set -eu
fuzztime=$1
go=${GO:-go}
for pkg in $($go list ./...); do
	for target in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== fuzz $pkg $target ($fuzztime)"
		$go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "$pkg"
	done
done
