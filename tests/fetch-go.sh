#!/bin/sh
# fetch-go.sh: print the path of a go command that can build govmm, that is
# one of Go 1.21 or later, which fetches the toolchain go.mod names through
# the Go module proxy by itself (GOTOOLCHAIN=auto). The go on PATH if it is
# new enough; otherwise Debian's golang-1.23 from bookworm-backports,
# unpacked under $GOVMM_CACHE/go-bootstrap (bookworm's own golang-go, 1.19,
# predates toolchain switching). Idempotent.
set -eu
cache=${GOVMM_CACHE:-$HOME/.cache/govmm}
dir=$cache/go-bootstrap
minor=23

# new_enough GO says whether GO runs and is go1.21 or later.
new_enough() {
	v=$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
	case $v in
	go1.[0-9] | go1.[0-9].* | go1.[0-9][!0-9]* | go1.1[0-9] | go1.1[0-9].* | go1.1[0-9][!0-9]* | go1.20 | go1.20.* | go1.20[!0-9]*) return 1 ;;
	go1.*) return 0 ;;
	esac
	return 1
}

if go=$(command -v go) && new_enough "$go"; then
	echo "$go"
	exit 0
fi
go=$dir/usr/lib/go-1.$minor/bin/go
"$(dirname "$0")/fetch-backports.sh" "$dir" golang-1.$minor-go golang-1.$minor-src
if ! new_enough "$go"; then
	echo "fetch-go: $go from golang-1.$minor-go does not run" >&2
	exit 1
fi
echo "$go"
