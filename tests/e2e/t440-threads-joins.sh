#!/bin/bash
# t440: a pthread_join that fails (a thread joined twice, a detached one,
# a thread joining itself) is a bad-join finding at its line, with the
# thread's creation; a thread joined once is none. Threads that end
# without being joined or detached are a thread-leak warning. The _np
# joins are joins too (a timed one that times out is no error). Threads
# that join each other in a ring, or through a lock, are a deadlock
# found as it forms; a chain that ends, or timed joins, are none.
# C11 threads (thrd_create, thrd_join, thrd_detach, thrd_exit) are
# followed as pthreads are.
. "$(dirname "$0")/lib.sh"

SRC=$FIXTURES/joins.c
BIN=$TEST_DIR/joins
gcc -std=gnu11 -O0 -g -pthread -o "$BIN" "$SRC" ||
	{ echo "Bail out! cannot build the test program"; exit 1; }

line_of() { grep -n -F -- "$1" "$SRC" | head -n 1 | cut -d: -f1; }
kind() { echo "[x for x in j[\"findings\"] if x[\"kind\"] == \"$1\"]"; }
first() { echo "($1[\"frames\"][0][\"function\"], $1[\"frames\"][0][\"line\"])"; }

run() {
	rm -f t.log
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$BIN" "$1" >out 2>err &&
	report_json t.log
}

# bad_join HOW ERROR: one bad-join, ERROR, at the line marked "BUG: HOW"
# (and the thread's creation, but for the main thread's own join)
bad_join() {
	run "$1" &&
	json_check t.log.json "len($(kind bad-join)) == 1" &&
	json_check t.log.json "($(kind bad-join))[0][\"details\"][\"error\"] == \"$2\"" &&
	json_check t.log.json "$(first "($(kind bad-join))[0][\"stacks\"][0]") == (\"main\", $(line_of "BUG: $1"))" &&
	{ test "$1" = self ||
	  json_check t.log.json "$(first "($(kind bad-join))[0][\"stacks\"][1]") == (\"main\", $(line_of "/* CREATE */"))"; }
}

test_expect 'a thread joined twice: bad-join, ESRCH, at the second join' '
	bad_join twice ESRCH && grep -x 3 out
'

test_expect 'a detached thread joined: bad-join, EINVAL' '
	bad_join detached EINVAL
'

test_expect 'a thread joining itself: bad-join, EDEADLK' '
	bad_join self EDEADLK
'

test_expect 'four threads that end unjoined: one thread-leak at their creation; detached ones, or created detached: nothing' '
	run leak && grep -qx leak out &&
	json_check t.log.json "[(x[\"severity\"], x[\"details\"][\"threads\"]) for x in $(kind thread-leak)] == [(\"warning\", 4)]" &&
	json_check t.log.json "$(first "($(kind thread-leak))[0][\"stacks\"][0]") == (\"leak\", $(line_of "LEAK: never joined"))" &&
	run leak-detach && json_check t.log.json "j[\"findings\"] == []" &&
	run leak-attr && json_check t.log.json "j[\"findings\"] == []"
'

test_expect 'a thread joined once: nothing' '
	run ok && json_check t.log.json "$(kind bad-join) == []" &&
	json_check t.log.json "j[\"findings\"] == []"
'

test_expect 'pthread_tryjoin_np, pthread_timedjoin_np (once timing out first) and pthread_clockjoin_np join their threads: no thread-leak, no bad-join' '
	run np && grep -qx "np 1 1 0 0" out &&
	json_check t.log.json "j[\"findings\"] == []" &&
	"$ANALYZE" dump --json t.log >d.json &&
	json_check d.json "sum(1 for e in j if e[\"kind\"] == \"thread_join\") == 4"
'

test_expect 'pthread_timedjoin_np of a thread joined before: bad-join, ESRCH, at its line, naming the call' '
	run np-twice && grep -qx 3 out &&
	json_check t.log.json "[(x[\"details\"][\"error\"], x[\"details\"][\"call\"], x[\"headline\"]) for x in $(kind bad-join)] == [(\"ESRCH\", \"pthread_timedjoin_np\", \"pthread_timedjoin_np of a thread already joined\")]" &&
	json_check t.log.json "$(first "($(kind bad-join))[0][\"stacks\"][0]") == (\"np\", $(line_of "BUG: np-twice"))"
'

# hangs CASE THREADS JOINS: CASE hangs when run plain; under libspy it
# ends with status 86, a deadlock of THREADS threads, JOINS of them in
# pthread_join
hangs() {
	rc=0 && timeout 2 "$BIN" "$1" >out || rc=$? && say "plain status $rc" && test $rc -eq 124 &&
	rm -f t.log && rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$BIN" "$1" >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "$2 threads wait for each other" err &&
	test "$(grep -c "waits in pthread_join for thread" err)" = "$3" &&
	report_json t.log &&
	json_check t.log.json "[x[\"details\"][\"threads\"] for x in $(kind deadlock)] == [$2]"
}

test_expect 'ring: three threads each joining the next wait for ever: a deadlock found as it forms, ended (86), each join at its line' '
	hangs ring 3 3 &&
	json_check t.log.json "[s[\"frames\"][0][\"line\"] for s in ($(kind deadlock))[0][\"stacks\"]] == [$(line_of "RING: joins the next")] * 3" &&
	json_check t.log.json "($(kind deadlock))[0][\"fix\"].startswith(\"Join in one direction only\")"
'

test_expect 'mutual: a thread joins the main thread, which then joins it: a deadlock of two joins (glibc does not see it)' '
	hangs mutual 2 2
'

test_expect 'mixed: a thread holding nothing joins one that waits for a lock held by a third, which joins the first: a deadlock' '
	hangs mixed 3 2 &&
	json_check t.log.json "($(kind deadlock))[0][\"fix\"].startswith(\"Unlock before pthread_join\")"
'

test_expect 'chain (the last thread ends) and timedring (the ring with timed joins, which time out): no deadlock, no finding' '
	run chain && grep -qx chain out && json_check t.log.json "j[\"findings\"] == []" &&
	run timedring && grep -qx timedring out && json_check t.log.json "j[\"findings\"] == []" &&
	! grep -q deadlock err
'


# C11 threads: glibc's thrd_create and thrd_join call its pthread code
# inside libc, which the pthread hooks do not see.
C11=$TEST_DIR/c11threads
gcc -std=gnu11 -O0 -g -pthread -o "$C11" "$FIXTURES/c11threads.c" ||
	{ echo "Bail out! cannot build the C11 test program"; exit 1; }

c11run() {
	rm -f t.log
	"$C11" "$1" >plain.out; echo $? >plain.rc
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY "$C11" "$1" >out 2>err
	echo $? >rc
	cmp plain.out out && cmp plain.rc rc && test ! -s err && report_json t.log
}

test_expect 'C11 threads joined (results read back, one ends in thrd_exit) or detached: same output and status, each counted, no finding' '
	c11run ok && test "$(cat rc)" = 3 && grep -qx "0 -7" out &&
	json_check t.log.json "j[\"machine\"][\"threads_created\"] == 5" &&
	json_check t.log.json "j[\"findings\"] == []"
'

test_expect 'a C11 thread that ends unjoined: thread-leak at its thrd_create; mtx_t taken in two orders: lock-order-cycle' '
	c11run leak &&
	json_check t.log.json "[x[\"details\"][\"threads\"] for x in $(kind thread-leak)] == [1]" &&
	json_check t.log.json "$(first "($(kind thread-leak))[0][\"stacks\"][0]") == (\"main\", $(grep -n -F "LEAK: never joined" "$FIXTURES/c11threads.c" | cut -d: -f1))" &&
	c11run order && grep -qx "1 2" out &&
	json_check t.log.json "len($(kind lock-order-cycle)) == 1"
'

test_done
