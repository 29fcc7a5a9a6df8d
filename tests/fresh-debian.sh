#!/bin/sh
# fresh-debian.sh DIR [MAKE-ARGS...]: check that govmm's make targets work
# from nothing on a fresh Debian bookworm: debootstrap a minimal bookworm
# into DIR (if DIR is not one already) with only git and make added, give
# it this machine's apt sources, DNS and local CA certificates, clone this repository's HEAD into
# it and run make there (`make test` unless MAKE-ARGS say otherwise) as
# root with a bare environment. /proc, /sys and /dev are bound in for the
# run and unbound after. Needs root and debootstrap; the mirror is the one
# this machine's apt names (tests/debian-mirror.sh).
set -eu
root=$(realpath -m "$1")
shift
[ $# -gt 0 ] || set -- test
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)

if [ ! -x "$root/usr/bin/make" ] || [ ! -x "$root/usr/bin/git" ]; then
	mirror=$("$repo/tests/debian-mirror.sh")
	debootstrap --variant=minbase --include=git,make bookworm "$root" "$mirror"
fi
rm -f "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	if [ -f "$f" ]; then
		cp "$f" "$root$f"
	fi
done
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Local CA certificates (a TLS-inspecting proxy's): ca-certificates, once
# make installs it, trusts them as it does here.
if [ -d /usr/local/share/ca-certificates ]; then
	mkdir -p "$root/usr/local/share/ca-certificates"
	cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi

mounted=""
cleanup() {
	for m in $mounted; do
		umount -l "$root$m" || true
	done
}
trap cleanup EXIT INT TERM
for m in /proc /sys /dev; do
	mount --rbind "$m" "$root$m"
	# Unmounting the copy must not unmount the host's own submounts.
	mount --make-rslave "$root$m"
	mounted="$m $mounted"
done

rm -rf "$root/root/govmm"
git clone -q "$repo" "$root/root/govmm"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM="${TERM:-dumb}" \
	sh -c 'cd /root/govmm && make "$@"' make "$@"
