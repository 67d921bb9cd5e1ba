#!/usr/bin/env bash
# analyze_run.sh: what `analyze` costs on big traces: for each command,
# the wall time, the CPU time and the peak resident memory (GNU time's
# max RSS), and both per MB of trace.
#
# Usage: bench/analyze_run.sh [TRACE...]
# With no trace, records one: bench/malloc_bench with 2 threads and
# BENCH_ANALYZE_ITERATIONS (default 5,000,000) malloc/free pairs under
# libspy (about 110 MB of trace), kept in bench/out/ and removed at the end.
#
# Environment:
#   ANALYZE=path/to/analyze   the analyzer to measure (default: the tree's)
#   ANALYZE_CMDS="summary heap ..."   the commands (default: all of them,
#       with report --html and export --chrome; dump's text goes to
#       /dev/null like every other output)
#   ANALYZE_TIMEOUT=900       seconds before a command counts as hung
# Prints a markdown table; a command that fails says so in its row.
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/out
ANALYZE=${ANALYZE:-$TOP/analyze}
CMDS=${ANALYZE_CMDS:-"summary dump heap leaks report map where fragmentation threads sched sharing syscalls lock-graph locks report-html export-chrome"}
LIMIT=${ANALYZE_TIMEOUT:-900}
ITER=${BENCH_ANALYZE_ITERATIONS:-5000000}
CC=${CC:-cc}

[ -x "$ANALYZE" ] || { echo "analyze_run.sh: no analyzer at '$ANALYZE' (make first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "analyze_run.sh: needs GNU time (/usr/bin/time)" >&2; exit 2; }
mkdir -p "$OUT" || exit 2

made=
if [ $# -eq 0 ]; then
	[ -f "$TOP/libspy.so" ] || { echo "analyze_run.sh: no libspy.so (make first)" >&2; exit 2; }
	$CC -std=gnu11 -O2 -g -pthread -o "$OUT/malloc_bench" "$TOP/bench/malloc_bench.c" || exit 2
	made=$OUT/analyze_bench.log
	rm -f "$made"
	SPY_OPTIONS=out=$made LD_PRELOAD=$TOP/libspy.so "$OUT/malloc_bench" 2 "$ITER" >/dev/null || exit 2
	set -- "$made"
fi

# The arguments of one command of the list, for trace $2.
args_of() {
	case $1 in
	report-html) echo "report --html -o /dev/null $2" ;;
	export-chrome) echo "export --chrome -o /dev/null $2" ;;
	where)
		# the first block the dump names: an address that is there
		local a
		a=$("$ANALYZE" dump "$2" 2>/dev/null | awk '$3 == "alloc" { print; exit }' |
			grep -oE '0x[0-9a-f]+' | head -n 1)
		echo "where $2 ${a:-0x1000}" ;;
	*) echo "$1 $2" ;;
	esac
}

echo "analyze: $ANALYZE"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| trace | MB | command | wall s | CPU s | max RSS MB | RSS per trace MB | s per 100 MB | status |"
echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"
for trace in "$@"; do
	if [ ! -f "$trace" ]; then
		echo "analyze_run.sh: no trace '$trace'" >&2
		continue
	fi
	bytes=$(stat -c %s "$trace")
	mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
	for cmd in $CMDS; do
		rm -f "$OUT/analyze_time.txt"
		# shellcheck disable=SC2046 # word splitting is the point
		timeout "$LIMIT" /usr/bin/time -o "$OUT/analyze_time.txt" -f "%e %U %S %M" \
			"$ANALYZE" $(args_of "$cmd" "$trace") >/dev/null 2>"$OUT/analyze_err.txt"
		rc=$?
		status="exit $rc"
		[ $rc -eq 124 ] && status="timed out after $LIMIT s"
		if [ $rc -gt 2 ] && [ $rc -ne 124 ]; then
			status="exit $rc: $(grep -v '^Command' "$OUT/analyze_err.txt" | head -n 1)"
		fi
		# GNU time writes "Command exited with non-zero status N" first
		# when the status is not 0.
		wall=0 user=0 sys=0 rss=0
		[ -s "$OUT/analyze_time.txt" ] &&
			read -r wall user sys rss < <(tail -n 1 "$OUT/analyze_time.txt")
		awk -v t="$(basename "$trace")" -v mb="$mb" -v c="$cmd" -v w="${wall:-0}" \
		    -v u="${user:-0}" -v s="${sys:-0}" -v r="${rss:-0}" -v st="$status" 'BEGIN {
			printf "| %s | %s | %s | %.2f | %.2f | %.0f | %.2f | %.2f | %s |\n",
			       t, mb, c, w, u + s, r / 1024, r / 1024 / mb,
			       w * 100 / mb, st }'
	done
done
rm -f "$OUT/analyze_time.txt" "$OUT/analyze_err.txt"
[ -n "$made" ] && rm -f "$made"
exit 0
