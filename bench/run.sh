#!/usr/bin/env bash
# run.sh: libspy's overhead on a malloc-heavy workload, next to peer tools.
#
# Runs bench/malloc_bench (T threads, 2,000,000 malloc/free pairs in total)
# plain, under libspy with and without stacks, under jemalloc, and where
# installed under valgrind memcheck and heaptrack. The configurations run
# INTERLEAVED in rounds (round 1: every configuration once, round 2: again,
# ...) so that a change of machine load hits all of them alike. Reports the
# median wall time (and the minimum), the ratio to plain with the same thread
# count, CPU time, max RSS, and libspy's trace bytes per event. Writes a
# markdown report to bench/out/results.md and prints it.
#
# Environment:
#   BENCH_ROUNDS=5          rounds of the fast configurations (at least 1)
#   BENCH_SLOW_ROUNDS=2     rounds in which memcheck and heaptrack also run
#   BENCH_ITERATIONS=2000000
#   BENCH_THREADS="1 2"
#   BENCH_CONFIGS="plain spy-record spy-nostacks spy jemalloc memcheck heaptrack"
#
# libspy runs three ways: spy-record records every call with its stack (the
# heap checks off: quarantine_mb=0:leaks=0:canary=0), spy-nostacks the same without
# stacks, spy is the default (recording plus the heap checks: a quarantine
# of freed blocks and the leak scan at exit). The recording targets are
# judged on the first two.
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/out
ROUNDS=${BENCH_ROUNDS:-5}
SLOW_ROUNDS=${BENCH_SLOW_ROUNDS:-2}
ITER=${BENCH_ITERATIONS:-2000000}
THREADS=${BENCH_THREADS:-"1 2"}
CONFIGS=${BENCH_CONFIGS:-"plain spy-record spy-nostacks spy jemalloc memcheck heaptrack"}
JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
CC=${CC:-cc}

mkdir -p "$OUT/raw" || exit 1
rm -f "$OUT"/raw/* "$OUT"/trace.* "$OUT"/heaptrack.*
$CC -std=gnu11 -O2 -g -pthread -o "$OUT/malloc_bench" "$TOP/bench/malloc_bench.c" || exit 1
$CC -std=gnu11 -O2 -g -o "$OUT/runtime" "$TOP/bench/runtime.c" || exit 1
BENCH=$OUT/malloc_bench

# Which configurations can run here; the others are reported as skipped.
available() {
	case $1 in
	plain) return 0 ;;
	spy|spy-record|spy-nostacks) [ -f "$TOP/libspy.so" ] ;;
	jemalloc) [ -f "$JEMALLOC" ] ;;
	memcheck) command -v valgrind >/dev/null 2>&1 ;;
	heaptrack) command -v heaptrack >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}
slow() { [ "$1" = memcheck ] || [ "$1" = heaptrack ]; }

# The exact command of a configuration, as printed in the report ($1 config,
# $2 threads, $3 how to name the binary).
command_of() {
	local b=$3
	case $1 in
	plain) echo "$b $2 $ITER" ;;
	spy) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$OUT/trace.spy.$2 $b $2 $ITER" ;;
	spy-record) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$OUT/trace.spy-record.$2:quarantine_mb=0:leaks=0:canary=0 $b $2 $ITER" ;;
	spy-nostacks) echo "env LD_PRELOAD=$TOP/libspy.so SPY_OPTIONS=out=$OUT/trace.spy-nostacks.$2:stacks=0:quarantine_mb=0:leaks=0:canary=0 $b $2 $ITER" ;;
	jemalloc) echo "env LD_PRELOAD=$JEMALLOC $b $2 $ITER" ;;
	memcheck) echo "valgrind --tool=memcheck -q $b $2 $ITER" ;;
	heaptrack) echo "heaptrack -o $OUT/heaptrack.$2 $b $2 $ITER" ;;
	esac
}

# Run one configuration once; append its measurement to raw/CONFIG.T.
run_one() {
	local c=$1 t=$2 raw=$OUT/raw/$c.$t
	rm -f "$OUT"/trace."$c.$t"* "$OUT"/heaptrack."$t".*
	# shellcheck disable=SC2046
	"$OUT/runtime" "$raw.time" $(command_of "$c" "$t" "$BENCH") \
		>"$raw.stdout" 2>"$raw.stderr"
	case $c in
	spy|spy-record|spy-nostacks)
		# The trace may be one file or several (out= may name a pattern).
		cat "$OUT"/trace."$c.$t"* 2>/dev/null | wc -c >>"$raw.trace" ;;
	esac
	grep -h '^threads ' "$raw.stdout" | tail -n 1 >"$raw.counts"
}

# Median and minimum of column $2 of file $1 (one run per line).
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR]=$1} END {
	if (NR == 0) { print "-"; exit }
	if (NR % 2) m = v[(NR+1)/2]; else m = (v[NR/2] + v[NR/2+1]) / 2
	print m }'; }
minimum() { awk -v c="$2" '{print $c}' "$1" | sort -g | head -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: $ROUNDS rounds (memcheck and heaptrack in the first $SLOW_ROUNDS), $ITER iterations, threads: $THREADS" >&2
for r in $(seq 1 "$ROUNDS"); do
	for t in $THREADS; do
		for c in $CONFIGS; do
			available "$c" || continue
			if slow "$c" && [ "$r" -gt "$SLOW_ROUNDS" ]; then continue; fi
			echo "bench: round $r, T=$t, $c" >&2
			run_one "$c" "$t"
		done
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the report ----
report() {
	local cpu kernel
	cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')
	kernel=$(uname -sr)
	echo "# malloc_bench overhead"
	echo
	echo "- machine: $(nproc) CPUs, $cpu, $kernel, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
	echo "- load average (1/5/15 min): $load_start at start, $load_end at the end"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); glibc $(ldd --version | head -n1 | awk '{print $NF}');" \
		"tree at commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)," \
		"libspy.so built $( [ -f "$TOP/libspy.so" ] && date -u -r "$TOP/libspy.so" '+%H:%M UTC' || echo never)"
	echo "- workload: \`malloc_bench T $ITER\` ($ITER iterations split across T threads; each frees a random"
	echo "  slot of 1024 and mallocs 16..4096 bytes; every 100th also keeps a block live)"
	echo "- $ROUNDS interleaved rounds; memcheck and heaptrack only in the first $SLOW_ROUNDS rounds (they are slow)"
	echo "- wall time: median of the runs (minimum in parentheses), clock_gettime around fork..wait4;"
	echo "  ×plain: median / plain's median with the same T; CPU: median user+system seconds;"
	echo "  RSS: largest max RSS of the runs"
	echo
	echo "| config | T=1 wall s | ×plain | CPU s | RSS MB | T=2 wall s | ×plain | CPU s | RSS MB | runs |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	local c t f cells runs
	for c in $CONFIGS; do
		if ! available "$c"; then
			echo "| $c | not available here | | | | | | | | 0 |"
			continue
		fi
		cells="" runs=""
		for t in 1 2; do
			f=$OUT/raw/$c.$t.time
			if [ ! -s "$f" ]; then cells="$cells | - | - | - | -"; continue; fi
			local bad med mn pmed cpu_s rss note=""
			bad=$(awk '$3 != 0 {n++} END {print n+0}' "$f")
			med=$(median "$f" 1); mn=$(minimum "$f" 1)
			pmed=$( [ -s "$OUT/raw/plain.$t.time" ] && median "$OUT/raw/plain.$t.time" 1 || echo -)
			cpu_s=$(median "$f" 4)
			rss=$(awk '$2 > m {m = $2} END {printf "%.0f", m/1024}' "$f")
			[ "$bad" -gt 0 ] && note=", $bad failed (status $(awk '$3 != 0 {print $3; exit}' "$f"))"
			cells="$cells | $(printf '%.3f' "$med") ($(printf '%.3f' "$mn"))$note | $(ratio "$med" "$pmed") | $(printf '%.2f' "$cpu_s") | $rss"
			runs="$runs$(wc -l <"$f")/"
		done
		echo "| $c$cells | ${runs%/} |"
	done
	echo
	echo "Commands (\`\$T\` = threads):"
	echo
	for c in $CONFIGS; do
		available "$c" && echo "- $c: \`$(command_of "$c" '$T' ./malloc_bench | sed "s|$TOP/|./|g")\`"
	done
	if available spy; then
		echo
		echo "## libspy trace size"
		echo
		echo "Events are the malloc and free calls that malloc_bench counts itself; the added"
		echo "CPU time per event is (median CPU s of the config - plain's) / events."
		echo
		echo "| config | T | trace bytes (median) | malloc + free calls | bytes per event | added CPU ns per event |"
		echo "|---|---|---|---|---|---|"
		for c in spy-record spy-nostacks spy; do
			for t in 1 2; do
				f=$OUT/raw/$c.$t
				[ -s "$f.trace" ] || continue
				local bytes events
				bytes=$(median "$f.trace" 1)
				events=$(awk '{print $6 + $8}' "$f.counts")
				local ns
				ns=$(awk -v a="$(median "$f.time" 4)" -v b="$(median "$OUT/raw/plain.$t.time" 4)" -v e="$events" \
					'BEGIN { if (e > 0) printf "%.0f", (a - b) / e * 1e9; else print "-" }')
				echo "| $c | $t | $bytes | $events | $(ratio "$bytes" "$events") | $ns |"
			done
		done
		echo
		echo "## Targets"
		echo
		local r1 r2 n1 n2 b1 b2 e1 e2 bmax
		r1=$(ratio "$(median "$OUT/raw/spy-record.1.time" 1)" "$(median "$OUT/raw/plain.1.time" 1)")
		r2=$(ratio "$(median "$OUT/raw/spy-record.2.time" 1)" "$(median "$OUT/raw/plain.2.time" 1)")
		n1=$(ratio "$(median "$OUT/raw/spy-nostacks.1.time" 1)" "$(median "$OUT/raw/plain.1.time" 1)")
		n2=$(ratio "$(median "$OUT/raw/spy-nostacks.2.time" 1)" "$(median "$OUT/raw/plain.2.time" 1)")
		bmax=-
		for c in spy-record spy-nostacks spy; do for t in 1 2; do
			f=$OUT/raw/$c.$t
			[ -s "$f.trace" ] || continue
			b1=$(ratio "$(median "$f.trace" 1)" "$(awk '{print $6 + $8}' "$f.counts")")
			bmax=$(awk -v a="$bmax" -v b="$b1" 'BEGIN { if (a == "-" || b+0 > a+0) print b; else print a }')
		done; done
		verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { if (v == "-") print "no data"; else if (v+0 <= lim+0) print "met"; else print "MISSED" }'; }
		echo "| target | measured | verdict |"
		echo "|---|---|---|"
		echo "| recording with stacks (spy-record) ≤ 2× plain | T=1 ${r1}×, T=2 ${r2}× | T=1 $(verdict "$r1" 2), T=2 $(verdict "$r2" 2) |"
		echo "| recording without stacks (spy-nostacks) ≤ 1.25× plain | T=1 ${n1}×, T=2 ${n2}× | T=1 $(verdict "$n1" 1.25), T=2 $(verdict "$n2" 1.25) |"
		echo "| ≤ 24 bytes of trace per event | largest: $bmax | $(verdict "$bmax" 24) |"
		# Run-to-run noise is a few percent, so "no more" allows 10%.
		echo "| T=2 pays no more than T=1, relative to plain (10% allowed for noise) | stacks ${r2}× vs ${r1}×, no stacks ${n2}× vs ${n1}× | stacks $(verdict "$r2" "$(awk -v r="$r1" 'BEGIN {print r * 1.1}')"), no stacks $(verdict "$n2" "$(awk -v r="$n1" 'BEGIN {print r * 1.1}')") |"
	fi
	local failed=""
	for f in "$OUT"/raw/*.time; do
		[ -e "$f" ] || continue
		awk '$3 != 0 {n++} END {exit n == 0}' "$f" && failed="$failed $(basename "$f" .time)"
	done
	if [ -n "$failed" ]; then
		echo
		echo "Runs that failed (non-zero status; their stderr is in bench/out/raw/):$failed"
	fi
}

report >"$OUT/results.md"
rm -f "$OUT"/trace.* "$OUT"/heaptrack.*
cat "$OUT/results.md"
