#!/bin/sh
# compare-bundle.sh DIR: build the OCI bundle `govmm compare` runs under
# every system (govmm, QEMU, runc, crun): DIR/rootfs is a minimal Debian
# bookworm (mmdebstrap's minbase) with fio, iperf3 and stress-ng from
# Debian's packages, DIR/config.json is what `runc spec` writes with no
# terminal and args ["sh","-c","echo ready"]. Those args only prove the
# bundle starts: govmm compare replaces them with each measure's command.
#
# Reproducible: SOURCE_DATE_EPOCH is fixed (mmdebstrap uses it, and every
# file's time is clamped to it), apt's lists, caches and logs are removed,
# and the packages come from bookworm, whose point releases change them
# rarely. Idempotent: DIR/.stamp names this script's content, and a bundle
# built by the same script is kept. Atomic: the bundle is built beside DIR
# and renamed into place, so DIR is whole or absent.
set -eu
dir=${1:?usage: compare-bundle.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
stamp=$(sha256sum <"$0" | cut -d' ' -f1)
if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi
# 2023-06-10, bookworm's release.
SOURCE_DATE_EPOCH=1686355200
export SOURCE_DATE_EPOCH
mirror=$("$here/debian-mirror.sh")
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo

parent=$(dirname "$dir")
mkdir -p "$parent"
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
chmod 755 "$tmp"
trap '$sudo rm -rf "$tmp"' EXIT
echo "== building the compare bundle from $mirror (a few minutes)"
$sudo env SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH mmdebstrap --quiet --variant=minbase \
	--include=fio,iperf3,stress-ng bookworm "$tmp/rootfs" "$mirror"
$sudo rm -rf "$tmp/rootfs/var/lib/apt/lists" "$tmp/rootfs/var/cache/apt" \
	"$tmp/rootfs/var/cache/ldconfig/aux-cache"
$sudo mkdir -p "$tmp/rootfs/var/lib/apt/lists/partial" "$tmp/rootfs/var/cache/apt/archives/partial"
$sudo find "$tmp/rootfs/var/log" -type f -delete
$sudo find "$tmp/rootfs" -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

(cd "$tmp" && runc spec)
# runc spec writes "terminal": true and an args list of its own lines.
sed -i -e 's/"terminal": true/"terminal": false/' \
	-e '/"args": \[/,/\]/c\		"args": ["sh", "-c", "echo ready"],' "$tmp/config.json"
grep -q '"args": \["sh", "-c", "echo ready"\]' "$tmp/config.json"
grep -q '"terminal": false' "$tmp/config.json"
touch --date="@$SOURCE_DATE_EPOCH" "$tmp/config.json"
echo "$stamp" >"$tmp/.stamp"

# Swap the new bundle in; an old one is removed only after.
old=
if [ -e "$dir" ]; then
	old=$(mktemp -d "$dir.old.XXXXXX")
	mv "$dir" "$old/"
fi
mv "$tmp" "$dir"
trap - EXIT
[ -z "$old" ] || $sudo rm -rf "$old"
echo "== compare bundle: $dir ($(du -sh "$dir" | cut -f1))"
