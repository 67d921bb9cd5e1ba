#!/usr/bin/env bash
# io_run.sh: what libspy adds to system calls: N one-byte writes to
# /dev/null (bench/io_bench), plain, under libspy's default, with
# io_patch=0 (PLT hooks only), with syscalls=all, and under strace -c,
# ltrace -c and perf trace -s where they are installed and allowed.
#
# The configurations run INTERLEAVED in rounds, so that a change of load
# falls on all of them alike; the report gives medians of the loop's own
# ns per call (the program times its loop) and of the whole command's wall
# time (bench/runtime.c), each as a ratio to plain. Writes bench/out/io.md.
#
# Environment:
#   BENCH_ROUNDS=5          rounds (the slow peers run in BENCH_SLOW_ROUNDS)
#   BENCH_SLOW_ROUNDS=1
#   BENCH_CALLS=1000000
#   BENCH_IO_CONFIGS="plain spy spy-plt spy-all strace ltrace perf"
#   BENCH_MODE=write        or putc (stdio's own writes)
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/out
ROUNDS=${BENCH_ROUNDS:-5}
SLOW_ROUNDS=${BENCH_SLOW_ROUNDS:-1}
N=${BENCH_CALLS:-1000000}
MODE=${BENCH_MODE:-write}
CONFIGS=${BENCH_IO_CONFIGS:-"plain spy spy-plt spy-all strace ltrace perf"}
CC=${CC:-cc}
RAW=$OUT/raw-io
mkdir -p "$RAW" || exit 1
rm -f "$RAW"/* "$OUT"/trace.io.*
$CC -std=gnu11 -O2 -g -o "$OUT/io_bench" "$TOP/bench/io_bench.c" || exit 1
$CC -std=gnu11 -O2 -g -o "$OUT/runtime" "$TOP/bench/runtime.c" || exit 1
B=$OUT/io_bench

available() {
	case $1 in
	plain) return 0 ;;
	spy|spy-plt|spy-all) [ -f "$TOP/libspy.so" ] ;;
	strace) command -v strace >/dev/null 2>&1 ;;
	ltrace) command -v ltrace >/dev/null 2>&1 ;;
	perf) command -v perf >/dev/null 2>&1 &&
		perf trace -s -o /dev/null true >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}
slow() { case $1 in strace|ltrace|perf) return 0 ;; esac; return 1; }

command_of() {
	local t=$OUT/trace.io.$1
	case $1 in
	plain) echo "$B $MODE $N" ;;
	spy) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$t $B $MODE $N" ;;
	spy-plt) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$t:io_patch=0 $B $MODE $N" ;;
	spy-all) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$t:syscalls=all $B $MODE $N" ;;
	strace) echo "strace -c -f -o $RAW/strace.txt $B $MODE $N" ;;
	ltrace) echo "ltrace -c -o $RAW/ltrace.txt $B $MODE $N" ;;
	perf) echo "perf trace -s -o $RAW/perf.txt $B $MODE $N" ;;
	esac
}

run_one() {
	local c=$1
	rm -f "$OUT"/trace.io."$c"*
	# shellcheck disable=SC2046
	"$OUT/runtime" "$RAW/$c.time" $(command_of "$c") >"$RAW/$c.out" 2>"$RAW/$c.err"
	awk '/ns\/call/ {print $4}' "$RAW/$c.out" >>"$RAW/$c.loop"
}

median() { sort -g "$1" | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "nan"}'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
	for c in $CONFIGS; do
		available "$c" || continue
		if slow "$c" && [ "$r" -gt "$SLOW_ROUNDS" ]; then continue; fi
		run_one "$c"
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

awk '{print $1}' "$RAW/plain.time" >"$RAW/plain.wall"
base_loop=$(median "$RAW/plain.loop")
base_wall=$(median "$RAW/plain.wall")
{
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)"
	echo "- load average: $load_start at start, $load_end at the end"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); tree at $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)"
	echo "- workload: \`io_bench $MODE $N\` ($N one-byte writes to /dev/null); $ROUNDS interleaved rounds, peers in $SLOW_ROUNDS"
	echo
	echo "| configuration | loop ns/call (median) | x plain | wall s (median) | x plain | runs |"
	echo "| --- | --- | --- | --- | --- | --- |"
	for c in $CONFIGS; do
		if ! available "$c" || [ ! -s "$RAW/$c.time" ]; then
			echo "| $c | skipped (not available) | | | | |"
			continue
		fi
		awk '{print $1}' "$RAW/$c.time" >"$RAW/$c.wall"
		l=$(median "$RAW/$c.loop"); w=$(median "$RAW/$c.wall")
		awk -v c="$c" -v l="$l" -v w="$w" -v bl="$base_loop" -v bw="$base_wall" \
			-v n="$(wc -l <"$RAW/$c.wall")" 'BEGIN {
			printf "| %s | %.1f | %.2f | %.3f | %.2f | %d |\n", c, l, l / bl, w, w / bw, n }'
	done
} >"$OUT/io.md"
cat "$OUT/io.md"
