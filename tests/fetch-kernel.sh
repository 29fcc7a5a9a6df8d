#!/bin/sh
# fetch-kernel.sh META DIR: unpack the Debian kernel package that the
# meta-package META (linux-image-cloud-amd64, linux-image-amd64) depends on
# into DIR, with uncompressed modules and DIR/vmlinuz pointing at the kernel.
# Idempotent: DIR/.package names what is unpacked; the .deb is cached in
# $GOVMM_CACHE/debs. Offline, an already unpacked kernel is kept.
set -eu
meta=$1
dir=$2
cache=${GOVMM_CACHE:-$HOME/.cache/govmm}

resolve() {
	apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
pkg=$(resolve)
if [ -z "$pkg" ] && [ ! -f "$dir/.package" ]; then
	apt-get update -qq
	pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
	if [ -f "$dir/.package" ]; then
		exit 0 # no package lists: keep what we have
	fi
	echo "fetch-kernel: apt knows no $meta; is this Debian with its package lists?" >&2
	exit 1
fi
if [ -f "$dir/.package" ] && [ "$(cat "$dir/.package")" = "$pkg" ] && [ -e "$dir/vmlinuz" ]; then
	exit 0
fi

mkdir -p "$cache/debs"
deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | tail -n 1 || true)
if [ -z "$deb" ]; then
	echo "fetch-kernel: downloading $pkg"
	(cd "$cache/debs" && apt-get download -q "$pkg" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
	deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | tail -n 1 || true)
	[ -n "$deb" ] || { echo "fetch-kernel: apt-get download $pkg failed" >&2; exit 1; }
fi
echo "fetch-kernel: unpacking $(basename "$deb") into $dir"
rm -rf "$dir.tmp"
dpkg -x "$deb" "$dir.tmp"
# The guest's busybox insmod and the sandbox load plain .ko files.
find "$dir.tmp/lib/modules" -name '*.ko.xz' -exec xz -d {} +
find "$dir.tmp/lib/modules" -name '*.ko.zst' -exec zstd -q -d --rm {} +
kernel=$(ls "$dir.tmp"/boot/vmlinuz-* | tail -n 1)
ln -s "boot/$(basename "$kernel")" "$dir.tmp/vmlinuz"
echo "$pkg" >"$dir.tmp/.package"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
