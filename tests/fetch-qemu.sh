#!/bin/sh
# fetch-qemu.sh DIR: unpack the QEMU that runs the nested-KVM sandbox into DIR
# (DIR/usr/bin/qemu-system-x86_64, firmware in DIR/usr/share/{qemu,seabios}).
# It comes from Debian bookworm-backports (tests/fetch-backports.sh): QEMU 10
# runs the nested I/O tests about a third faster than bookworm's 7.2, and
# wedged its nested guests less often in one afternoon's runs. It links
# against the libraries bookworm's qemu-system-x86 brings, which the
# Makefile installs for the sandbox.
set -eu
dir=$1
before=$(cat "$dir/.packages" 2>/dev/null || true)
"$(dirname "$0")/fetch-backports.sh" "$dir" qemu-system-x86 qemu-system-common qemu-system-data seabios
if [ "$(cat "$dir/.packages")" != "$before" ]; then
	if ! v=$("$dir/usr/bin/qemu-system-x86_64" --version); then
		rm -f "$dir/.packages"
		echo "fetch-qemu: the unpacked QEMU does not run (apt-get install qemu-system-x86 brings its libraries)" >&2
		exit 1
	fi
	echo "$v" | head -n 1
fi
