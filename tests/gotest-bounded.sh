#!/bin/sh
# gotest-bounded.sh LOG TEST-BINARY [ARGS...]: run a Go test binary built
# with -test.v, show its output as it comes and keep it in LOG, and exit
# with its status.
#
# One case is bounded: the binary printed its verdict (a last line of PASS or
# FAIL) and then did not exit. In the nested-KVM sandbox a CPU can wedge
# inside an emulated guest while the rest of the sandbox runs on, so a
# thread of the exiting binary, or a VMM it started, never returns; waiting
# would hold the run until the sandbox's overall timeout. After
# GOVMM_EXIT_GRACE seconds (120 unless set) this script reports the stuck
# processes and exits with the verdict's status instead.
set -u
log=$1
shift
grace=${GOVMM_EXIT_GRACE:-120}

: >"$log"
rm -f "$log.status"
# The status file appears once the binary is reaped, every thread gone. The
# runner holds none of this script's output, so that a reader of it sees
# its end when this script exits, even if the runner lives on.
( "$@" >"$log" 2>&1; echo $? >"$log.status" ) </dev/null >/dev/null 2>&1 &
runner=$!
tail -n +1 -f --pid="$runner" "$log" &
tailpid=$!

# verdict prints 0 or 1 if the log ends with go test's PASS or FAIL line.
verdict() {
	case $(tail -n 1 "$log") in
	PASS) echo 0 ;;
	FAIL) echo 1 ;;
	esac
}

waited=0
while [ ! -s "$log.status" ]; do
	sleep 1
	v=$(verdict)
	if [ -z "$v" ]; then
		waited=0
		continue
	fi
	waited=$((waited + 1))
	if [ "$waited" -ge "$grace" ]; then
		kill "$tailpid" 2>/dev/null
		echo "== $1 printed its verdict ($(tail -n 1 "$log")) but had not exited ${grace}s later; going on without it"
		pid=$(pgrep -P "$runner")
		echo "== processes left (state, kernel wait channel, one line per thread):"
		ps -eLo pid,ppid,tid,stat,wchan:32,etime,args |
			awk -v p="${pid:-none}" 'NR == 1 || $1 == p || $2 == p || /govmm run|qemu-system/' | grep -v awk
		for s in /proc/"${pid:-none}"/task/*/stack; do
			if [ -r "$s" ]; then
				echo "-- $s"
				cat "$s"
			fi
		done
		if [ -n "$pid" ]; then
			pkill -9 -P "$pid"
			kill -9 "$pid"
		fi
		# A binary stuck in the kernel may not die; give it a moment.
		for _ in 1 2 3 4 5; do
			if [ -s "$log.status" ]; then
				break
			fi
			sleep 1
		done
		rm -f "$log.status"
		exit "$v"
	fi
done
wait "$tailpid" 2>/dev/null
status=$(cat "$log.status")
rm -f "$log.status"
exit "$status"
