# lib.sh: TAP helpers for the end-to-end tests, sourced by tests/e2e/t*.sh.
# A test is a name and a &&-chained body, run in a subshell inside its own
# scratch directory; its output is shown only when it fails:
#
#   . "$(dirname "$0")/lib.sh"
#   test_expect 'spy keeps the exit status' '
#       "$TOP/spy" -- sh -c "exit 3"; test $? = 3
#   '
#   test_done
#
# The working directory is a fresh temporary one (tests/run.sh makes it);
# TOP is the top of the source tree.

: "${TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
export TOP
unset LD_PRELOAD SPY_OPTIONS
ulimit -c 0 # the crashes we cause need no core files
# The system's programs, not a user's wrappers of them.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
SPY=$TOP/spy
ANALYZE=$TOP/analyze
LIBSPY=$TOP/libspy.so
TEST_DIR=$(pwd)
FIXTURES=$TOP/tests/e2e/fixtures

test_count=0
test_failed=0

# test_expect NAME BODY: one assertion.
test_expect() {
	test_count=$((test_count + 1))
	local dir=$TEST_DIR/$test_count log
	mkdir -p "$dir"
	log=$dir/.log
	# The commands are traced into the log (set -x), so that a failure
	# shows which step of the chain stopped it. They run as a function's
	# body, so that a loop in them can stop with `|| return 1`.
	local body=$2
	if (test_body() { eval "$body"; } && cd "$dir" && set -x && test_body) >"$log" 2>&1 </dev/null; then
		echo "ok $test_count - $1"
	else
		test_failed=$((test_failed + 1))
		echo "not ok $test_count - $1"
		tail -n 40 "$log" | sed 's/^/# /'
	fi
}

# test_skip NAME REASON
test_skip() {
	test_count=$((test_count + 1))
	echo "ok $test_count - $1 # SKIP $2"
}

test_done() {
	echo "1..$test_count"
	[ "$test_failed" -eq 0 ]
}

# say ...: a line in the log shown when a test fails.
say() { echo "> $*"; }

# traced CMD...: CMD with libspy preloaded; SPY_OPTIONS as the caller set it.
traced() { LD_PRELOAD=$LIBSPY "$@"; }

# summary_ok TRACE: `analyze summary` reads TRACE and says 0 or 1, not 2.
summary_ok() {
	local rc=0
	"$ANALYZE" summary "$1" >"$1.summary" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
		say "analyze summary '$1' exited $rc:"
		cat "$1.summary"
		return 1
	fi
}

# summary_json TRACE: writes TRACE.json with `analyze summary --json`.
summary_json() {
	local rc=0
	"$ANALYZE" summary --json "$1" >"$1.json" 2>"$1.json.err" || rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
		say "analyze summary --json '$1' exited $rc:"
		cat "$1.json.err"
		return 1
	fi
}

# report_json TRACE [OUT]: `analyze report --json TRACE` into OUT
# (TRACE.json); status 0 (no finding) or 1 (findings) is fine, anything
# else fails with what analyze printed.
report_json() {
	local rc=0 out=${2:-$1.json}
	"$ANALYZE" report --json "$1" >"$out" 2>"$out.err" || rc=$?
	say "analyze report exited $rc"
	[ "$rc" -le 1 ] || { cat "$out.err"; return 1; }
}

# json_check FILE PYTHON-EXPR: the expression, over the parsed file as `j`,
# is true. Prints the file when it is not.
json_check() {
	python3 - "$1" "$2" <<'PY' || { say "json check failed: $2"; head -c 3000 "$1"; return 1; }
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# same_output NAME CMD...: runs CMD in plain/ and, with libspy preloaded and
# traces going to traced/trace.%e.%p.log, in traced/; the standard outputs
# must be byte-identical and the statuses equal; every trace must read.
same_output() {
	local name=$1 prc=0 trc=0 t n=0
	shift
	mkdir -p plain traced
	(cd plain && "$@") >plain.out 2>plain.err || prc=$?
	local opts=${SPY_OPTIONS:+$SPY_OPTIONS:}out=$PWD/traced/trace.%e.%p.log
	(cd traced && SPY_OPTIONS=$opts LD_PRELOAD=$LIBSPY "$@") \
		>traced.out 2>traced.err || trc=$?
	say "$name: status $prc plain, $trc traced"
	if [ "$prc" -ne "$trc" ]; then
		say "stderr with libspy:"; cat traced.err
		return 1
	fi
	cmp plain.out traced.out || {
		say "stdout differs:"; diff plain.out traced.out | head -n 20
		return 1
	}
	for t in traced/trace.*.log; do
		[ -f "$t" ] || continue
		n=$((n + 1))
		summary_ok "$t" || return 1
	done
	say "$n traces"
	[ "$n" -gt 0 ] || { say "no trace written"; cat traced.err; return 1; }
}

# build_victim: compiles fixtures/victim.c to $VICTIM (once per script).
VICTIM=$TEST_DIR/victim
build_victim() {
	[ -x "$VICTIM" ] ||
	gcc -std=gnu11 -O0 -g -o "$VICTIM" "$FIXTURES/victim.c"
}

# one_line FILE: FILE holds exactly one line.
one_line() {
	local n
	n=$(wc -l <"$1")
	[ "$n" -eq 1 ] || { say "expected one line in $1, found $n:"; cat "$1"; return 1; }
}
