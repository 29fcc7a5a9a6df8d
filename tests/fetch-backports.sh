#!/bin/sh
# fetch-backports.sh DIR PACKAGE...: unpack the named packages, as Debian
# bookworm-backports has them, into DIR (dpkg -x, no installation). apt
# runs with a private source list, package lists and cache under
# $GOVMM_CACHE/backports-apt, so the system's apt and its packages are left
# as they are; the archive is the one the system's own apt sources take
# bookworm from (tests/debian-mirror.sh), so a local mirror or proxy serves
# it. Idempotent: DIR/.packages names what is unpacked; offline, what is
# already unpacked is kept. Messages go to stderr.
set -eu
dir=$1
shift
pkgs=$*
here=$(dirname "$0")
cache=${GOVMM_CACHE:-$HOME/.cache/govmm}
apt=$cache/backports-apt
suite=bookworm-backports

mirror=$("$here/debian-mirror.sh")
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
# One apt at a time on these lists (two fetches may run under make -j).
exec 9>"$apt/lock"
flock 9
echo "deb $mirror $suite main" >"$apt/sources.list"
aptopts() {
	echo -o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
}
# The version each package has in the suite (not the system's candidate).
versions() {
	for p in $pkgs; do
		v=$(apt-cache $(aptopts) madison "$p" 2>/dev/null | awk -F' [|] ' -v s="$suite/" 'index($3, s) { print $2; exit }')
		[ -n "$v" ] || return 1
		echo "$p=$v"
	done
}
want=$(versions || true)
if [ -z "$want" ]; then
	apt-get -q $(aptopts) update >/dev/null 2>&1 || true
	want=$(versions || true)
fi
if [ -z "$want" ]; then
	if [ -f "$dir/.packages" ]; then
		exit 0 # no package lists: keep what we have
	fi
	echo "fetch-backports: cannot find $pkgs in Debian $suite at $mirror" >&2
	exit 1
fi
if [ -f "$dir/.packages" ] && [ "$(cat "$dir/.packages")" = "$want" ]; then
	exit 0
fi

echo "fetch-backports: downloading" $want >&2
rm -f "$apt"/debs/*.deb
(cd "$apt/debs" && apt-get -q $(aptopts) download $want 2>&1 | grep -v "^W: Download is performed unsandboxed" || true) >&2
for p in $pkgs; do
	ls "$apt/debs/${p}_"*.deb >/dev/null 2>&1 || { echo "fetch-backports: apt-get download $p failed" >&2; exit 1; }
done
rm -rf "$dir.tmp"
for deb in "$apt"/debs/*.deb; do
	dpkg -x "$deb" "$dir.tmp"
done
rm -f "$apt"/debs/*.deb
echo "$want" >"$dir.tmp/.packages"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
