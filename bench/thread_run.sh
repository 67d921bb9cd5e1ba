#!/usr/bin/env bash
# thread_run.sh: what libspy adds to a thread's life (create, start, exit,
# join) and, with sampling on, to two busy threads.
#
# Runs bench/thread_bench plain and under libspy, INTERLEAVED in rounds,
# and reports medians (the program times itself, so process start and the
# trace's end stay out): wall and CPU nanoseconds per thread for
# `life N 1` (one thread at a time), the same on one CPU (`taskset`: where
# the scheduler puts each new thread, on the creator's CPU or the other,
# moves a run by several µs a thread, more than libspy adds; on one CPU
# that choice is gone) and `life N 100` (100 alive at once),
# and wall and CPU seconds for `spin M` (two threads writing their own
# counters) with and without sampling. Writes bench/out/threads.md.
#
# Environment:
#   BENCH_ROUNDS=7        rounds
#   BENCH_THREADS=20000   threads per `life` run
#   BENCH_SPIN=400        millions of increments per thread in `spin`
#   BENCH_BASE=PATH       another libspy.so (an older build) run side by side
#                         as base, base-nosched and base-sample
#   BENCH_PREFIX="..."    a command each run goes through, e.g. "taskset -c 1"
#                         (one CPU: no wake-ups across CPUs) or "nice -n -15"
#                         (the machine's other work then takes less of it)
# The configurations run in a new random order each round: a traced run
# leaves work behind (its trace's pages written back, its file removed)
# that slows whatever runs next.
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/out
ROUNDS=${BENCH_ROUNDS:-7}
N=${BENCH_THREADS:-20000}
SPIN=${BENCH_SPIN:-400}
CC=${CC:-cc}
BASE=${BENCH_BASE:-}
PREFIX=${BENCH_PREFIX:-}
if [ -n "$BASE" ] && [ ! -f "$BASE" ]; then
	echo "thread bench: no library '$BASE'" >&2
	exit 2
fi
mkdir -p "$OUT/raw-threads" || exit 1
RAW=$OUT/raw-threads
rm -f "$RAW"/* "$OUT"/trace.threads.*
$CC -std=gnu11 -O2 -g -pthread -o "$OUT/thread_bench" "$TOP/bench/thread_bench.c" || exit 1
B=$OUT/thread_bench

# config -> SPY_OPTIONS ("-" for plain)
opts_of() {
	case $1 in
	plain) echo - ;;
	spy) echo "out=$OUT/trace.threads.%p" ;;
	spy-nosched) echo "out=$OUT/trace.threads.%p:thread_sched=0" ;;
	spy-sample) echo "out=$OUT/trace.threads.%p:sample_hz=1000" ;;
	base) echo "out=$OUT/trace.threads.%p" ;;
	base-nosched) echo "out=$OUT/trace.threads.%p:thread_sched=0" ;;
	base-sample) echo "out=$OUT/trace.threads.%p:sample_hz=1000" ;;
	esac
}

# The CPU the one-CPU runs are held to (the last), if taskset is there.
PIN=
if [ "$(nproc)" -gt 1 ] && command -v taskset >/dev/null 2>&1; then
	PIN="taskset -c $(($(nproc) - 1))"
fi

run() { # config workload args...
	local c=$1 w=$2 o pin=
	shift 2
	o=$(opts_of "$c")
	lib=$TOP/libspy.so
	case $c in base*) lib=$BASE ;; esac
	case $w in *cpu) pin=$PIN ;; esac
	if [ "$o" = - ]; then
		$PREFIX $pin "$B" "$@"
	else
		$PREFIX $pin env SPY_OPTIONS="$o" LD_PRELOAD="$lib" "$B" "$@"
	fi >>"$RAW/$c.$w" 2>>"$RAW/errors"
	rm -f "$OUT"/trace.threads.*
}

sample_ok=0
grep -q sample_hz "$TOP/common/options_table.h" && sample_ok=1
echo "thread bench: $ROUNDS rounds, $N threads per life run, spin $SPIN M" >&2
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
life_configs="plain spy spy-nosched${BASE:+ base base-nosched}"
spin_configs="plain spy"
[ $sample_ok = 1 ] && spin_configs="$spin_configs spy-sample${BASE:+ base-sample}"
shuffled() { printf '%s\n' "$@" | shuf; }
for r in $(seq 1 "$ROUNDS"); do
	echo "thread bench: round $r" >&2
	for c in $(shuffled $life_configs); do
		run "$c" life1 life "$N" 1
	done
	if [ -n "$PIN" ]; then
		for c in $(shuffled $life_configs); do
			run "$c" life1cpu life "$N" 1
		done
	fi
	for c in $(shuffled $life_configs); do
		run "$c" life100 life "$N" 100
	done
	for c in $(shuffled $spin_configs); do
		run "$c" spin spin "$SPIN"
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

median() { awk -v c="$2" '{print $c}' "$1" 2>/dev/null | sort -g | awk '{v[NR]=$1} END {
	if (NR == 0) { print "-"; exit }
	if (NR % 2) m = v[(NR+1)/2]; else m = (v[NR/2] + v[NR/2+1]) / 2
	print m }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.1f", (a - b) / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3f", a / b }'; }

{
	echo "# thread_bench"
	echo
	echo "- machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//'), $(uname -sr)"
	echo "- load average: $load_start at start, $load_end at the end; $ROUNDS interleaved rounds, medians${PREFIX:+; each run through '$PREFIX'}"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), tree at $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)${BASE:+; base: $BASE}"
	echo
	echo "| workload | config | wall µs/thread | CPU µs/thread | added wall µs | added CPU µs |"
	echo "|---|---|---|---|---|---|"
	for w in life1 ${PIN:+life1cpu} life100; do
		pw=$(median "$RAW/plain.$w" 3) pc=$(median "$RAW/plain.$w" 4)
		label="life $N ${w#life}"
		[ "$w" = life1cpu ] && label="life $N 1, one CPU"
		for c in $life_configs; do
			cw=$(median "$RAW/$c.$w" 3) cc=$(median "$RAW/$c.$w" 4)
			echo "| $label | $c | $(awk -v v="$cw" 'BEGIN{printf "%.1f", v/1000}') | $(awk -v v="$cc" 'BEGIN{printf "%.1f", v/1000}') | $(diff_us "$cw" "$pw") | $(diff_us "$cc" "$pc") |"
		done
	done
	echo
	echo "| workload | config | wall s | CPU s | ×plain wall | ×plain CPU |"
	echo "|---|---|---|---|---|---|"
	pw=$(median "$RAW/plain.spin" 3) pc=$(median "$RAW/plain.spin" 4)
	for c in $spin_configs; do
		[ -s "$RAW/$c.spin" ] || continue
		cw=$(median "$RAW/$c.spin" 3) cc=$(median "$RAW/$c.spin" 4)
		echo "| spin $SPIN | $c | $cw | $cc | $(ratio "$cw" "$pw") | $(ratio "$cc" "$pc") |"
	done
	[ -s "$RAW/errors" ] && { echo; echo "stderr of the runs:"; echo; sed 's/^/    /' "$RAW/errors" | head -n 20; }
} >"$OUT/threads.md"
cat "$OUT/threads.md"
