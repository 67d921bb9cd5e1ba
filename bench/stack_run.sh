#!/usr/bin/env bash
# stack_run.sh: what call stacks cost on real programs (deep, varied stacks:
# V8, OpenSSL, CPython, cc1), next to malloc_bench's one call site.
#
# Runs each program plain, under libspy with stacks (the default options)
# and with stacks=0, INTERLEAVED in rounds, each round in a new random
# order, and reports the median CPU time (user + system, the program and
# its children) and the ratios to plain. Programs not installed are
# skipped. Writes bench/out/stacks.md and prints it.
#
# Environment:
#   BENCH_ROUNDS=7       rounds
#   BENCH_PROGRAMS="node python gxx git perl"
#   BENCH_BASE=PATH      another libspy.so (an older build) run side by side
#                        as base (stacks) and base-nostacks
set -u

TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$TOP/bench/out
RAW=$OUT/raw-stacks
ROUNDS=${BENCH_ROUNDS:-7}
PROGRAMS=${BENCH_PROGRAMS:-"node python gxx git perl"}
BASE=${BENCH_BASE:-}
CC=${CC:-cc}
if [ -n "$BASE" ] && [ ! -f "$BASE" ]; then
	echo "stack bench: no library '$BASE'" >&2
	exit 2
fi
mkdir -p "$RAW" || exit 1
rm -f "$RAW"/* "$OUT"/trace.stacks.*
$CC -std=gnu11 -O2 -g -o "$OUT/runtime" "$TOP/bench/runtime.c" || exit 1

# A C++ file of a few hundred lines of templates for g++ -c.
CXXSRC=$OUT/stack_run_input.cc
{
	echo '#include <map>'
	echo '#include <string>'
	echo '#include <vector>'
	echo '#include <sstream>'
	echo '#include <functional>'
	echo '#include <algorithm>'
	echo '#include <memory>'
	for i in $(seq 1 12); do
		echo "struct S$i { std::map<std::string, std::vector<int>> m; std::string n; };"
		echo "std::string f$i(const S$i &s) { std::ostringstream o; for (auto &p : s.m) { o << p.first << p.second.size(); } std::vector<std::unique_ptr<S$i>> v; std::sort(v.begin(), v.end()); std::function<int(int)> g = [&](int x) { return x + (int)s.n.size(); }; o << g($i); return o.str(); }"
	done
} >"$CXXSRC"

cmd_of() { # program -> command, or nothing when not installed
	case $1 in
	node) command -v node >/dev/null && echo "node -e 0" ;;
	python) [ -x /usr/bin/python3 ] && echo "/usr/bin/python3 -c 'import ssl, json, email'" ;;
	gxx) command -v g++ >/dev/null && echo "g++ -O1 -c $CXXSRC -o $OUT/stack_run_input.o" ;;
	git) command -v git >/dev/null && [ -d "$TOP/.git" ] && echo "git -C $TOP log -n 200 -p" ;;
	perl) command -v perl >/dev/null && perl -MCPAN -e 1 2>/dev/null && echo "perl -MCPAN -e 1" ;;
	esac
}

run() { # config program
	local c=$1 p=$2 cmd lib=$TOP/libspy.so o=
	cmd=$(cmd_of "$p")
	case $c in base*) lib=$BASE ;; esac
	case $c in
	stacks | base) o="out=$OUT/trace.stacks.%p" ;;
	nostacks | base-nostacks) o="out=$OUT/trace.stacks.%p:stacks=0" ;;
	esac
	eval "set -- $cmd"
	if [ -z "$o" ]; then
		"$OUT/runtime" "$RAW/$c.$p" "$@"
	else
		"$OUT/runtime" "$RAW/$c.$p" env SPY_OPTIONS="$o" LD_PRELOAD="$lib" "$@"
	fi >/dev/null 2>>"$RAW/errors"
	rm -f "$OUT"/trace.stacks.*
}

progs=
for p in $PROGRAMS; do
	if [ -n "$(cmd_of "$p")" ]; then progs="$progs $p"; else echo "stack bench: $p not installed, skipped" >&2; fi
done
configs="plain stacks nostacks${BASE:+ base base-nostacks}"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
	echo "stack bench: round $r" >&2
	for p in $progs; do
		for c in $(printf '%s\n' $configs | shuf); do
			run "$c" "$p"
		done
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

median() { awk '{print $4}' "$1" 2>/dev/null | sort -g | awk '{v[NR]=$1} END {
	if (NR == 0) { print "-"; exit }
	if (NR % 2) m = v[(NR+1)/2]; else m = (v[NR/2] + v[NR/2+1]) / 2
	print m }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

{
	echo "# Call stacks on real programs"
	echo
	echo "- machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//'), $(uname -sr)"
	echo "- load average: $load_start at start, $load_end at the end; $ROUNDS interleaved rounds, median CPU seconds (user + system)"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), tree at $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null)${BASE:+; base: $BASE}"
	echo
	printf '| program | plain s |'
	for c in $configs; do [ $c = plain ] || printf ' %s s | ×plain |' "$c"; done
	echo
	printf '|---|---|'
	for c in $configs; do [ $c = plain ] || printf -- '---|---|'; done
	echo
	for p in $progs; do
		pc=$(median "$RAW/plain.$p")
		printf '| %s | %s |' "$(cmd_of "$p" | sed "s|$OUT/||g; s|$TOP|.|")" "$pc"
		for c in $configs; do
			[ $c = plain ] && continue
			cc=$(median "$RAW/$c.$p")
			printf ' %s | %s |' "$cc" "$(ratio "$cc" "$pc")"
		done
		echo
	done
	if [ -s "$RAW/errors" ]; then
		echo
		echo "stderr of the runs (first lines):"
		head -5 "$RAW/errors" | sed 's/^/    /'
	fi
} | tee "$OUT/stacks.md"
