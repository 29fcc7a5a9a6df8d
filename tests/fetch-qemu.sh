#!/bin/sh
# fetch-qemu.sh DIR: unpack the QEMU that runs the nested-KVM sandbox into DIR
# (DIR/usr/bin/qemu-system-x86_64, firmware in DIR/usr/share/{qemu,seabios}).
# It comes from Debian bookworm-backports: QEMU 10 runs the nested I/O tests
# about a third faster than bookworm's 7.2, and wedged its nested guests less
# often in one afternoon's runs (README, "Tests and the nested-KVM sandbox").
# apt runs with a private source list, package lists and cache under
# $GOVMM_CACHE/qemu-apt, so the system's apt and its QEMU are left as they
# are. Idempotent: DIR/.packages names what is unpacked; offline, an already
# unpacked QEMU is kept.
set -eu
dir=$1
cache=${GOVMM_CACHE:-$HOME/.cache/govmm}
apt=$cache/qemu-apt
suite=bookworm-backports
pkgs="qemu-system-x86 qemu-system-common qemu-system-data seabios"

mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
echo "deb http://deb.debian.org/debian $suite main" >"$apt/sources.list"
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
	echo "fetch-qemu: cannot find $pkgs in Debian $suite; is deb.debian.org reachable?" >&2
	exit 1
fi
if [ -f "$dir/.packages" ] && [ "$(cat "$dir/.packages")" = "$want" ] && [ -x "$dir/usr/bin/qemu-system-x86_64" ]; then
	exit 0
fi

echo "fetch-qemu: downloading" $want
(cd "$apt/debs" && rm -f ./*.deb && apt-get -q $(aptopts) download $want 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
for p in $pkgs; do
	ls "$apt/debs/${p}_"*.deb >/dev/null 2>&1 || { echo "fetch-qemu: apt-get download $p failed" >&2; exit 1; }
done
rm -rf "$dir.tmp"
for deb in "$apt"/debs/*.deb; do
	dpkg -x "$deb" "$dir.tmp"
done
"$dir.tmp/usr/bin/qemu-system-x86_64" --version | head -n 1
echo "$want" >"$dir.tmp/.packages"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
