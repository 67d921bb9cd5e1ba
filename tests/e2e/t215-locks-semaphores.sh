#!/bin/bash
# t215: POSIX semaphores as locks (fixtures/sem_cases.c) and Python's
# threading.Lock, which is built on them (fixtures/py_locks.py): two
# binary semaphores or two Locks taken in opposite orders are a lock-order
# cycle, one order is none; semaphores used as signals or counters
# (producer/consumer, a pool, queue.Queue, Condition, Event, a Lock
# released by another thread) are no locks and make no finding; a real
# deadlock on them is caught live; outputs, statuses and errno unchanged.
. "$(dirname "$0")/lib.sh"

CASES=$TEST_DIR/sem_cases
gcc -std=gnu11 -O0 -g -pthread -o "$CASES" "$FIXTURES/sem_cases.c" ||
	{ echo "Bail out! cannot build sem_cases"; exit 1; }
PY=/usr/bin/python3
PYCASES=$FIXTURES/py_locks.py

# run_case CMD...: runs it plain and under libspy (outputs and statuses
# must match) and writes t.log.json, the report.
run_case() {
	local rc=0 prc=0 trc=0
	"$@" >plain.out || prc=$?
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$@" >out || trc=$?
	test $prc -eq $trc || { say "status $prc plain, $trc traced"; return 1; }
	cmp plain.out out || return 1
	"$ANALYZE" report --json t.log >t.log.json 2>err || rc=$?
	[ "$rc" -le 1 ] || { say "analyze exited $rc"; cat err; return 1; }
}

cycles() {
	echo "[sorted(f['details']['cycle']['locks']) for f in j['findings'] if f['kind'] == 'lock-order-cycle' and f['severity'] == 'error']"
}
none() {
	echo "len([f for f in j['findings'] if f['kind'] in ('lock-order-cycle', 'deadlock', 'livelock')]) == 0"
}

test_expect 'C abba: two binary semaphores in opposite orders are a cycle, named' '
	run_case "$CASES" abba &&
	json_check t.log.json "$(cycles) == [[\"accounts\", \"audit\"]]" &&
	{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -le 1; } &&
	json_check g.json "sorted((l[\"name\"], l[\"type\"]) for l in j[\"locks\"]) == [(\"accounts\", \"semaphore\"), (\"audit\", \"semaphore\")]"
'

test_expect 'C ordered: the same semaphores in one order are no finding' '
	run_case "$CASES" ordered && json_check t.log.json "$(none)"
'

test_expect 'C signal: signalling and counting semaphores are no locks' '
	run_case "$CASES" signal && json_check t.log.json "$(none)" &&
	{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -le 1; } &&
	json_check g.json "[l[\"name\"] for l in j[\"locks\"]] == [\"ring_lock\"]"
'

test_expect 'C errno: return values and errno as without libspy' '
	run_case "$CASES" errno && cat out &&
	grep -q "^wait 0 1234, try -1 Resource temporarily unavailable, timed -1 Connection timed out, clock -1 Connection timed out, post 0 4321, destroy 0$" out &&
	grep -q "^bad time -1 Invalid argument, bad clock -1 Invalid argument$" out
'

test_expect 'C hang: a real deadlock on two semaphores is caught live (status 86)' '
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$CASES" hang >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "2 threads wait for each other" err &&
	{ "$ANALYZE" report --json t.log >t.log.json; test $? -eq 1; } &&
	json_check t.log.json "[f[\"details\"][\"threads\"] for f in j[\"findings\"] if f[\"kind\"] == \"deadlock\"] == [2]"
'

test_expect 'python abba: threading.Lock in opposite orders is a cycle' '
	run_case $PY "$PYCASES" abba && grep -q "^abba: done$" out &&
	json_check t.log.json "len($(cycles)) == 1" &&
	{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -le 1; } &&
	json_check g.json "len([l for l in j[\"locks\"] if l[\"type\"] == \"semaphore\"]) >= 2"
'

test_expect 'python ordered: one order is no finding' '
	run_case $PY "$PYCASES" ordered && grep -q "^ordered: done$" out &&
	json_check t.log.json "$(none)"
'

test_expect 'python signal: Queue, Condition, Event, a Lock released elsewhere: no finding' '
	run_case $PY "$PYCASES" signal && grep -q "^signal: total 19900$" out &&
	json_check t.log.json "$(none)"
'

# Threads' lock-site tables (192 bytes) are cut 16 from one slab: one given
# back when no spare slot was free unmapped its whole page, and the threads
# whose tables shared it died.
test_expect 'python many: 120 threads end while others take locks, no crash' '
	run_case $PY "$PYCASES" many && grep -q "^many: 3000$" out &&
	json_check t.log.json "$(none)"
'

test_expect 'python hang: a real deadlock on two Locks is caught live (status 86)' '
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY $PY "$PYCASES" hang >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "2 threads wait for each other" err
'

test_done
