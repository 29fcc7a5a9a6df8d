#!/bin/sh
# debian-mirror.sh [SOURCES...]: print the URI of the Debian archive this
# machine's apt takes bookworm's main component from, so that packages
# fetched from bookworm-backports outside apt's normal path (the sandbox's
# QEMU, a bootstrap Go) come from the same mirror or proxy as everything
# else. SOURCES are apt source files, one-line style (*.list) or deb822
# (*.sources); by default the system's, in the order apt reads them.
# GOVMM_DEBIAN_MIRROR, if set, is printed instead.
set -eu
if [ -n "${GOVMM_DEBIAN_MIRROR:-}" ]; then
	echo "$GOVMM_DEBIAN_MIRROR"
	exit 0
fi
if [ $# = 0 ]; then
	set -- /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
fi
uri=
for f in "$@"; do
	[ -f "$f" ] || continue
	case $f in
	*.sources) format=deb822 ;;
	*) format=oneline ;;
	esac
	uri=$(awk -v format="$format" '
	function serves(types, uris, suites, comps,   n, i, t, s, c, u) {
		# A "deb" entry (not only deb-src) with suite bookworm and main.
		if (!(" " types " " ~ / deb /)) return ""
		if (!(" " suites " " ~ / bookworm /)) return ""
		if (!(" " comps " " ~ / main /)) return ""
		n = split(uris, u, " ")
		for (i = 1; i <= n; i++)
			if (u[i] !~ /^cdrom:/) return u[i]
		return ""
	}
	function stanza(   r) {
		if (enabled != "no") {
			r = serves(f["types"], f["uris"], f["suites"], f["components"])
			if (r != "") { print r; found = 1; exit }
		}
		split("", f); enabled = ""; last = ""
	}
	format == "oneline" {
		sub(/#.*/, "")
		if ($1 != "deb") next
		line = $0
		sub(/^[ \t]*deb[ \t]+/, "", line)
		# Options in brackets may hold spaces: [arch=amd64 signed-by=...].
		if (line ~ /^\[/) { sub(/^\[[^]]*\][ \t]*/, "", line) }
		n = split(line, w, /[ \t]+/)
		comps = ""
		for (i = 3; i <= n; i++) comps = comps " " w[i]
		r = serves("deb", w[1], w[2], comps)
		if (r != "") { print r; found = 1; exit }
		next
	}
	/^#/ { next }
	/^[ \t]*$/ { stanza(); next }
	/^[ \t]/ { if (last != "") f[last] = f[last] " " $0; next }
	{
		i = index($0, ":")
		if (i == 0) next
		last = tolower(substr($0, 1, i - 1))
		v = substr($0, i + 1)
		gsub(/^[ \t]+|[ \t]+$/, "", v)
		if (last == "enabled") enabled = tolower(v)
		else f[last] = v
	}
	END { if (format == "deb822" && !found) stanza() }
	' "$f")
	if [ -n "$uri" ]; then
		echo "${uri%/}"
		exit 0
	fi
done
echo "debian-mirror: no apt source serves Debian bookworm main (in $*); set GOVMM_DEBIAN_MIRROR to a Debian archive URI" >&2
exit 1
