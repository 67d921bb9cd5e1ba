#!/usr/bin/env bash
# lock_run.sh: libspy's cost on lock/unlock pairs, next to helgrind and drd.
#
# Runs bench/lock_bench (2 threads; "sep": each its own mutex, "shared": one
# mutex for both; "one": a single thread, the cost of a pair alone) plain and under libspy (the default; "spy-record": the
# lock recording alone, heap checks off, as bench/run.sh judges recording;
# and without stacks), INTERLEAVED in rounds so that a change of machine load hits all
# alike, and where installed under valgrind's helgrind and drd with fewer
# pairs (they are hundreds of times slower; per-pair figures compare). Reports
# median wall and CPU seconds, ratios to plain, and the CPU nanoseconds that
# libspy adds per lock/unlock pair. Writes bench/out/locks.md and prints it.
#
# Environment:
#   LOCK_ROUNDS=5        rounds (at least 1)
#   LOCK_PAIRS=2000000   pairs per thread
#   LOCK_SLOW_PAIRS=50000  pairs per thread under helgrind and drd (1 round)
#   LOCK_BASELINE=PATH   another libspy.so (say, an earlier build) run in the
#                        same rounds as config "baseline" (stacks on), for a
#                        before/after comparison measured side by side
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/out
ROUNDS=${LOCK_ROUNDS:-5}
PAIRS=${LOCK_PAIRS:-2000000}
SLOW=${LOCK_SLOW_PAIRS:-50000}
CC=${CC:-cc}
RAW=$OUT/lockraw

mkdir -p "$RAW" || exit 1
rm -f "$RAW"/* "$OUT"/trace.lock.*
$CC -std=gnu11 -O2 -g -pthread -o "$OUT/lock_bench" "$TOP/bench/lock_bench.c" || exit 1
$CC -std=gnu11 -O2 -g -o "$OUT/runtime" "$TOP/bench/runtime.c" || exit 1
B=$OUT/lock_bench

BASELINE=${LOCK_BASELINE:-}
CONFIGS="plain spy spy-record spy-nostacks"
[ -n "$BASELINE" ] && CONFIGS="plain baseline spy spy-record spy-nostacks"
command -v valgrind >/dev/null 2>&1 && SLOWCONFIGS="helgrind drd" || SLOWCONFIGS=""

command_of() { # config mode pairs
	case $1 in
	plain) echo "$B $2 $3" ;;
	spy) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$OUT/trace.lock.$2 $B $2 $3" ;;
	baseline) echo "env LD_PRELOAD=$BASELINE SPY_OPTIONS=out=$OUT/trace.lock.$2 $B $2 $3" ;;
	spy-record) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$OUT/trace.lock.$2:quarantine_mb=0:leaks=0 $B $2 $3" ;;
	spy-nostacks) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$OUT/trace.lock.$2:stacks=0 $B $2 $3" ;;
	helgrind) echo "valgrind -q --tool=helgrind $B $2 $3" ;;
	drd) echo "valgrind -q --tool=drd $B $2 $3" ;;
	esac
}

run_one() { # config mode pairs
	local raw=$RAW/$1.$2
	# shellcheck disable=SC2046
	"$OUT/runtime" "$raw.time" $(command_of "$1" "$2" "$3") >>"$raw.stdout" 2>>"$raw.stderr"
	[ -f "$OUT/trace.lock.$2" ] && wc -c <"$OUT/trace.lock.$2" >>"$raw.trace"
	rm -f "$OUT"/trace.lock.*
}

median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR]=$1} END {
	if (NR == 0) { print "-"; exit }
	if (NR % 2) m = v[(NR+1)/2]; else m = (v[NR/2] + v[NR/2+1]) / 2
	print m }'; }
# Median of lock_bench's own per-pair wall time (the loop only, no start-up).
loop_ns() { [ -s "$1" ] && awk '{for (i = 1; i < NF; i++) if ($i == "ns_per_pair") print $(i+1)}' "$1" >"$1.ns" && median "$1.ns" 1 || echo -; }
# All the pairs of a run: both threads', or the one thread's.
pairs_of() { if [ "$1" = one ]; then echo "$PAIRS"; else echo $((2 * PAIRS)); fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
	for mode in sep shared one; do
		for c in $CONFIGS; do
			echo "lock bench: round $r, $mode, $c" >&2
			run_one "$c" "$mode" "$PAIRS"
		done
	done
done
for mode in sep shared; do
	for c in $SLOWCONFIGS; do
		echo "lock bench: $mode, $c with $SLOW pairs" >&2
		"$OUT/runtime" "$RAW/$c.$mode.slow.time" $(command_of "$c" "$mode" "$SLOW") \
			>>"$RAW/$c.$mode.slow.stdout" 2>>"$RAW/$c.$mode.slow.stderr"
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

report() {
	echo "# lock_bench overhead"
	echo
	echo "- machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//'), $(uname -sr)"
	echo "- load average (1/5/15 min): $load_start at start, $load_end at the end"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); tree at commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "- workload: \`lock_bench MODE $PAIRS\`: 2 threads × $PAIRS lock/unlock pairs; sep = own mutex each, shared = one mutex; one = 1 thread × $PAIRS pairs"
	echo "- $ROUNDS interleaved rounds; medians; CPU = user + system of the whole process"
	echo
	echo "| config | mode | wall s | ×plain | CPU s | ×plain | added CPU ns per pair | loop wall ns per pair | trace bytes per pair |"
	echo "|---|---|---|---|---|---|---|---|---|"
	local c mode f w cpu pw pc
	for mode in sep shared one; do
		pw=$(median "$RAW/plain.$mode.time" 1); pc=$(median "$RAW/plain.$mode.time" 4)
		for c in $CONFIGS; do
			f=$RAW/$c.$mode.time
			[ -s "$f" ] || continue
			w=$(median "$f" 1); cpu=$(median "$f" 4)
			local ns bytes="-"
			ns=$(awk -v a="$cpu" -v b="$pc" -v n="$(pairs_of "$mode")" 'BEGIN { printf "%.0f", (a - b) / n * 1e9 }')
			[ "$c" = plain ] && ns=0
			[ -s "$RAW/$c.$mode.trace" ] && bytes=$(awk -v b="$(median "$RAW/$c.$mode.trace" 1)" -v n="$(pairs_of "$mode")" 'BEGIN { printf "%.1f", b / n }')
			echo "| $c | $mode | $(printf '%.3f' "$w") | $(ratio "$w" "$pw") | $(printf '%.3f' "$cpu") | $(ratio "$cpu" "$pc") | $ns | $(loop_ns "$RAW/$c.$mode.stdout") | $bytes |"
		done
	done
	if [ -n "$SLOWCONFIGS" ]; then
		echo
		echo "Peer tools, one run each with $SLOW pairs per thread; the loop's own wall"
		echo "nanoseconds per pair (valgrind runs one thread at a time), against plain's"
		echo "median from the rounds above:"
		echo
		echo "| config | mode | loop wall ns per pair | ×plain |"
		echo "|---|---|---|---|"
		for mode in sep shared; do
			local p
			p=$(loop_ns "$RAW/plain.$mode.stdout")
			for c in $SLOWCONFIGS; do
				local v
				v=$(loop_ns "$RAW/$c.$mode.slow.stdout")
				echo "| $c | $mode | $v | $(ratio "$v" "$p") |"
			done
		done
	fi
	echo
	echo "Commands:"
	echo
	for c in $CONFIGS $SLOWCONFIGS; do
		echo "- $c: \`$(command_of "$c" MODE PAIRS | sed "s|$TOP/|./|g")\`"
	done
}

report >"$OUT/locks.md"
cat "$OUT/locks.md"
