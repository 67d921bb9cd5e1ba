#!/bin/bash
# t216: OpenMP locks (fixtures/omp_locks.c), libgomp's own futexes that
# no pthread hook sees: taken in one order, and tried, they make no
# finding, with output and status unchanged (a nestable lock beside them
# is not seen, and changes nothing); two taken in opposite orders by two
# threads are a lock-order cycle, named; a real deadlock on them is
# caught live.
. "$(dirname "$0")/lib.sh"

BIN=$TEST_DIR/omp_locks
if ! gcc -std=gnu11 -O0 -g -fopenmp -o "$BIN" "$FIXTURES/omp_locks.c" 2>/dev/null; then
	test_skip 'OpenMP locks' 'gcc -fopenmp cannot build here (no libgomp)'
	test_done
	exit 0
fi

run_case() {
	local rc=0 prc=0 trc=0
	rm -f t.log
	"$BIN" "$1" >plain.out || prc=$?
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$BIN" "$1" >out 2>err || trc=$?
	test $prc -eq $trc || { say "status $prc plain, $trc traced"; return 1; }
	cmp plain.out out && test ! -s err || return 1
	"$ANALYZE" report --json t.log >t.log.json 2>aerr || rc=$?
	[ "$rc" -le 1 ] || { say "analyze exited $rc"; cat aerr; return 1; }
}

cycles() {
	echo "[sorted(f['details']['cycle']['locks']) for f in j['findings'] if f['kind'] == 'lock-order-cycle' and f['severity'] == 'error']"
}

test_expect 'one order, tries, a nestable lock beside them: every take recorded, no finding' '
	run_case ok && grep -qx "6000 1" out &&
	test "$("$ANALYZE" dump t.log | grep -c lock-acquire)" -ge 6000 &&
	json_check t.log.json "j[\"findings\"] == []"
'

test_expect 'two omp_lock_t taken in opposite orders by two threads: a lock-order cycle, named' '
	run_case order && grep -qx order out &&
	json_check t.log.json "$(cycles) == [[\"accounts\", \"audit\"]]"
'

test_expect 'two threads each holding one omp_lock_t and waiting for the other: a deadlock, ended with 86' '
	rc=0
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY timeout 20 "$BIN" hang >out 2>err || rc=$?
	test $rc = 86 && grep -q "spy: deadlock: 2 threads" err && ! grep -q never out
'

test_done
