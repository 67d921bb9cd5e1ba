#!/usr/bin/env bash
# record_floor.sh: how close libspy without stacks is to the least any
# recorder of every malloc and free can cost (bench/record_floor.c).
#
# Runs bench/malloc_bench (1 thread) plain, under record_floor.so in each
# configuration below, and under libspy with and without stacks (the heap
# checks off, as run.sh's spy-record and spy-nostacks), INTERLEAVED in
# rounds; prints the median CPU time (user + system) of each and its ratio
# to plain. Writes bench/out/record_floor.md.
#
#   floor-ring-16        16-byte records into a ring in the cache: no trace
#   floor-file-16/8/4    16, 8 or 4 bytes a record into a shared file
#                        mapping, kept as libspy's writer keeps its trace
#   floor-write-16/8     16 or 8 bytes a record into the ring, handed to
#                        the file by pwrite each time it is full
#   floor-ring-16-shadow a shadow byte per block too (a live-block map)
#   floor-file-8-shadow  the same with a file
#
# Environment:
#   BENCH_ROUNDS=7
#   BENCH_ITERATIONS=6000000
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/out
ROUNDS=${BENCH_ROUNDS:-7}
ITER=${BENCH_ITERATIONS:-6000000}
CC=${CC:-cc}
RAW=$OUT/raw-floor

[ -f "$TOP/libspy.so" ] || { echo "record floor: build libspy.so first (make)" >&2; exit 2; }
mkdir -p "$RAW" || exit 1
rm -f "$RAW"/* "$OUT"/trace.floor.* "$OUT"/record_floor.data.*
$CC -std=gnu11 -O2 -g -pthread -o "$OUT/malloc_bench" "$TOP/bench/malloc_bench.c" || exit 1
$CC -std=gnu11 -O2 -g -o "$OUT/runtime" "$TOP/bench/runtime.c" || exit 1
$CC -std=gnu11 -O2 -g -shared -fPIC -o "$OUT/record_floor.so" "$TOP/bench/record_floor.c" || exit 1

CONFIGS="plain floor-ring-16 floor-file-16 floor-file-8 floor-file-4 floor-write-16 floor-write-8 floor-ring-16-shadow floor-file-8-shadow spy-nostacks spy-record"
CHECKS_OFF=quarantine_mb=0:leaks=0:canary=0

run_one() {
	local c=$1 env=()
	case $c in
	plain) ;;
	floor-*)
		local rest=${c#floor-} sink bytes shadow=0
		sink=${rest%%-*}
		rest=${rest#*-}
		bytes=${rest%%-*}
		[ "${rest#*-}" = shadow ] && shadow=1
		env=(LD_PRELOAD="$OUT/record_floor.so" RECORD_FLOOR_SINK="$sink"
		     RECORD_FLOOR_BYTES="$bytes" RECORD_FLOOR_SHADOW="$shadow"
		     RECORD_FLOOR_FILE="$OUT/record_floor.data.$c") ;;
	spy-nostacks)
		env=(LD_PRELOAD="$TOP/libspy.so"
		     SPY_OPTIONS="out=$OUT/trace.floor.%p:stacks=0:$CHECKS_OFF") ;;
	spy-record)
		env=(LD_PRELOAD="$TOP/libspy.so"
		     SPY_OPTIONS="out=$OUT/trace.floor.%p:$CHECKS_OFF") ;;
	esac
	env "${env[@]}" "$OUT/runtime" "$RAW/$c" "$OUT/malloc_bench" 1 "$ITER" \
		>/dev/null 2>"$RAW/$c.stderr" || echo "record floor: $c failed" >&2
	rm -f "$OUT"/trace.floor.* "$OUT"/record_floor.data.*
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
	echo "record floor: round $r" >&2
	for c in $CONFIGS; do
		run_one "$c"
	done
done

median() { sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]}'; }
cpu_of() { awk '{print $4}' "$RAW/$1" | median; }

plain=$(cpu_of plain)
{
	echo "# record floor"
	echo
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r)"
	echo "- load average: $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
	echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), tree at $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)"
	echo "- malloc_bench 1 $ITER; $ROUNDS interleaved rounds; median CPU time (user + system)"
	echo
	echo "| configuration | CPU s | ×plain |"
	echo "|---|---|---|"
	for c in $CONFIGS; do
		cpu=$(cpu_of "$c")
		[ -n "$cpu" ] || continue
		echo "| $c | $cpu | $(awk -v a="$cpu" -v b="$plain" 'BEGIN {printf "%.2f", a / b}') |"
	done
} | tee "$OUT/record_floor.md"
