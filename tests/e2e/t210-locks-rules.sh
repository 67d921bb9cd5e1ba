#!/bin/bash
# t210: the lock-order rules, one small program per rule
# (fixtures/locks_cases.c): what must be reported as an error, what is an
# info line that says why it is safe, and what must stay silent; the live
# deadlock check on a three-thread ring and on a thread relocking its own
# mutex; timed waits are never a deadlock; 100 locks held at once; hot
# loops of pairs: counted exactly, hold times estimated only there.
. "$(dirname "$0")/lib.sh"

CASES=$TEST_DIR/locks_cases
gcc -std=gnu11 -O0 -g -pthread -o "$CASES" "$FIXTURES/locks_cases.c" ||
	{ echo "Bail out! cannot build locks_cases"; exit 1; }

# run_case CASE: runs it under libspy (plain and traced outputs must match)
# and writes t.log.json, the report.
run_case() {
	local rc=0
	"$CASES" "$1" >plain.out || return 1
	SPY_OPTIONS=out=$PWD/t.log${OPTS:+:$OPTS} LD_PRELOAD=$LIBSPY "$CASES" "$1" >out &&
	cmp plain.out out &&
	{ "$ANALYZE" report --json t.log >t.log.json 2>err || rc=$?; } &&
	{ [ "$rc" -le 1 ] || { say "analyze exited $rc"; cat err; false; }; }
}

# cycles SEVERITY: python expression, the lock-order-cycle findings of it.
cycles() {
	echo "len([f for f in j['findings'] if f['kind'] == 'lock-order-cycle' and f['severity'] == '$1'])"
}
none() {
	echo "len([f for f in j['findings'] if f['kind'] in ('lock-order-cycle', 'deadlock', 'livelock')]) == 0"
}

expect_error() {
	test_expect "$1: $2" '
		run_case '"$1"' && json_check t.log.json "$(cycles error) == 1"
	'
}
expect_none() {
	test_expect "$1: $2" '
		run_case '"$1"' && json_check t.log.json "$(none)"
	'
}

expect_error abba "ABBA in threads that never overlap is still a potential deadlock"
expect_error trylock2 "a trylock that succeeds is a source of later edges"
expect_error condwait "a condition wait re-takes its mutex as a blocking acquisition"
expect_error rdwr "a write lock against a read lock closes a cycle"
expect_error recursive "a recursive mutex taken twice adds no self-edge, the cycle is found"
expect_error spin "spin locks take part"
expect_error c11 "C11 mtx_lock is seen (glibc calls its pthread code directly)"
expect_error ring3 "a three-lock ring over three threads"
expect_error late "an inversion after 70,000 other order edges is still found"
test_expect 'late: the lock-graph picture of 70,000 edges is drawn at once, its cycle in red, the rest said' '
	run_case late &&
	{ timeout 120 "$ANALYZE" lock-graph --svg t.log >g.svg; test $? -eq 1; } &&
	grep -q "<svg" g.svg && test "$(grep -c "stroke=\"red\"" g.svg)" -ge 2 &&
	grep -q "more order edges are not drawn" g.svg &&
	test "$(grep -c "class=\"edge\"" g.svg)" -le 300 &&
	{ "$ANALYZE" lock-graph --dot t.log >g.dot; test $? -eq 1; } &&
	test "$(grep -c -- "->" g.dot)" -ge 70002
'
expect_none trylock "a trylock never adds an edge into the lock it tries"
expect_none rdrd "read after read on an rwlock does not block"
# The heap quarantine would keep the addresses from being reused: off here.
for c in reuse freeonly; do
	test_expect "$c: a lock whose memory is reused (destroyed, or only freed) is a new lock" '
		OPTS=quarantine_mb=0 run_case '"$c"' && grep -q "same addresses: yes" out &&
		json_check t.log.json "$(none)" &&
		"$ANALYZE" lock-graph --json t.log >g.json &&
		json_check g.json "sorted(l[\"generation\"] for l in j[\"locks\"]) == [1, 1, 2, 2]" &&
		json_check g.json "all(\"-byte block 0x\" in l[\"name\"] and \"allocated at locks_cases.c:\" in l[\"name\"] for l in j[\"locks\"])"
	'
done
test_expect 'rdwr: the graph and the finding say how each rwlock end was taken' '
	run_case rdwr &&
	{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -le 1; } &&
	json_check g.json "sorted([(e[\"from_mode\"], e[\"to_mode\"]) for e in j[\"edges\"]], key=str) == sorted([(None, \"read\"), (\"write\", None)], key=str)" &&
	{ "$ANALYZE" lock-graph t.log >g.txt; test $? -le 1; } &&
	grep -q "^  L[0-9] -> L[0-9] (read)  1 time" g.txt &&
	grep -q "^  L[0-9] (write) -> L[0-9]  1 time" g.txt &&
	{ "$ANALYZE" report t.log >r.txt; test $? -eq 1; } &&
	tr -s " \n" "  " <r.txt | grep -q "takes .R. for reading while holding .A." &&
	grep -q "took .R. for writing here" r.txt
'
expect_none spinwait "threads busy waiting on a lock held by a working thread are no livelock"
expect_none chain30 "a chain of 30 locks that never closes"

test_expect 'gate: the inversion under a common lock is an info line naming it' '
	run_case gate &&
	json_check t.log.json "$(cycles error) == 0 and $(cycles info) == 1" &&
	json_check t.log.json "[f[\"details\"][\"cycle\"][\"gate\"] for f in j[\"findings\"]] == [\"G\"]"
'

test_expect 'single: an inversion inside one thread is an info line' '
	run_case single &&
	json_check t.log.json "$(cycles error) == 0 and $(cycles info) == 1" &&
	json_check t.log.json "[f[\"details\"][\"cycle\"][\"one_thread\"] for f in j[\"findings\"]] == [True]"
'

test_expect 'joinchain: a cycle of three edges that only two threads made is an info line' '
	run_case joinchain &&
	json_check t.log.json "$(cycles error) == 0 and $(cycles info) == 1" &&
	json_check t.log.json "[(f[\"details\"][\"cycle\"][\"few_threads\"], len(f[\"details\"][\"cycle\"][\"locks\"])) for f in j[\"findings\"]] == [(True, 3)]" &&
	json_check t.log.json "\"too few threads\" in j[\"findings\"][0][\"headline\"]" &&
	{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -eq 0; } &&
	json_check g.json "[c[\"verdict\"] for c in j[\"cycles\"]] == [\"few-threads\"]"
'
test_expect 'joinhold: holding the outer lock too while waiting for the other thread is an error' '
	run_case joinhold &&
	json_check t.log.json "$(cycles error) == 1" &&
	json_check t.log.json "[sorted(f[\"details\"][\"cycle\"][\"locks\"]) for f in j[\"findings\"] if f[\"severity\"] == \"error\"] == [[\"A\", \"S\"]]"
'
test_expect 'joinchain3: the same three edges from three threads are an error, one thread per edge' '
	run_case joinchain3 &&
	json_check t.log.json "$(cycles error) == 1 and $(cycles info) == 0" &&
	json_check t.log.json "len(set(int(w) for w in __import__(\"re\").findall(r\"\\(thread (\\d+)\\) locks\", j[\"findings\"][0][\"explanation\"]))) == 3"
'

test_expect 'ring30: a 30-lock cycle is shown whole, with 60 stacks' '
	run_case ring30 &&
	json_check t.log.json "[f[\"details\"][\"cycle\"][\"locks\"][:2] for f in j[\"findings\"]] == [[\"ring[0]\", \"ring[1]\"]]" &&
	json_check t.log.json "$(cycles error) == 1" &&
	json_check t.log.json "[len(f[\"details\"][\"cycle\"][\"locks\"]) for f in j[\"findings\"]] == [30]" &&
	json_check t.log.json "[len(f[\"stacks\"]) for f in j[\"findings\"]] == [60]"
'

test_expect 'held100: 100 locks held at once, no crash, no finding, all counted' '
	run_case held100 &&
	json_check t.log.json "$(none)" &&
	json_check t.log.json "any(\"more than 64 locks\" in n[\"text\"] for n in j[\"notes\"])" &&
	"$ANALYZE" locks --json t.log >l.json &&
	json_check l.json "len(j[\"locks\"]) == 100"
'

test_expect 'hang3: a real three-thread deadlock is reported and ended (status 86)' '
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$CASES" hang3 >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "3 threads wait for each other" err &&
	{ "$ANALYZE" report --json t.log >t.log.json; test $? -eq 1; } &&
	json_check t.log.json "[f[\"details\"][\"threads\"] for f in j[\"findings\"] if f[\"kind\"] == \"deadlock\"] == [3]"
'

test_expect 'hothang: a deadlock formed inside a hot loop of pairs is reported and ended' '
	rc=0 && timeout 5 "$CASES" hothang >out || rc=$? && test $rc -eq 124 &&
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$CASES" hothang >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "2 threads wait for each other" err &&
	{ "$ANALYZE" report --json t.log >t.log.json; test $? -eq 1; } &&
	json_check t.log.json "[f[\"details\"][\"threads\"] for f in j[\"findings\"] if f[\"kind\"] == \"deadlock\"] == [2]" &&
	"$ANALYZE" locks --json t.log >l.json &&
	json_check l.json "sorted((l[\"name\"], l[\"acquisitions\"]) for l in j[\"locks\"]) == [(\"A\", 50000), (\"B\", 1)]"
'

test_expect 'condhang: a deadlock through the mutex a condition wait must take back' '
	rc=0 && timeout 2 "$CASES" condhang >out || rc=$? && test $rc -eq 124 &&
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$CASES" condhang >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "to return from a condition wait" err &&
	{ "$ANALYZE" report --json t.log >t.log.json; test $? -eq 1; } &&
	json_check t.log.json "[f[\"details\"][\"threads\"] for f in j[\"findings\"] if f[\"kind\"] == \"deadlock\"] == [2]"
'

test_expect 'joinhang: joining a thread that waits for a lock the joiner holds is a deadlock, found as it forms; joinfixed (unlock, then join) is not' '
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$CASES" joinhang >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "waits in pthread_join for thread" err &&
	{ "$ANALYZE" report --json t.log >t.log.json; test $? -eq 1; } &&
	json_check t.log.json "[(f[\"details\"][\"threads\"], \"pthread_join\" in f[\"fix\"]) for f in j[\"findings\"] if f[\"kind\"] == \"deadlock\"] == [(2, True)]" &&
	run_case joinfixed && grep -qx joined out &&
	json_check t.log.json "$(none)"
'

L_MISUSE_OTHER=$(grep -n "MISUSE: another" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_MISUSE_TWICE=$(grep -n "MISUSE: once too often" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_MISUSE_HELD=$(grep -n "MISUSE: still locked" "$FIXTURES/locks_cases.c" | cut -d: -f1)
# misuse KIND LINE: the one finding of the run, its kind and line
misuse() {
	echo "[(f[\"kind\"], f[\"stacks\"][0][\"frames\"][0][\"line\"]) for f in j[\"findings\"] if f[\"kind\"] in (\"bad-unlock\", \"bad-destroy\")] == [(\"$1\", $2)]"
}

test_expect 'a mutex unlocked twice, unlocked by another thread, destroyed while locked: each found where it was done; locked at a fork and unlocked on both sides: nothing' '
	run_case unlock2 && json_check t.log.json "$(misuse bad-unlock "$L_MISUSE_TWICE")" &&
	run_case unlockother && json_check t.log.json "$(misuse bad-unlock "$L_MISUSE_OTHER")" &&
	json_check t.log.json "[f[\"details\"][\"holder\"] > 0 for f in j[\"findings\"] if f[\"kind\"] == \"bad-unlock\"] == [True]" &&
	run_case destroyheld && json_check t.log.json "$(misuse bad-destroy "$L_MISUSE_HELD")" &&
	"$CASES" atfork >plain.out &&
	SPY_OPTIONS=out=$PWD/a.%p.log LD_PRELOAD=$LIBSPY "$CASES" atfork >out &&
	cmp plain.out out && test "$(ls a.*.log | wc -l)" = 2 &&
	for f in a.*.log; do
		"$ANALYZE" report --json "$f" >"$f.json"; test $? -le 1 &&
		json_check "$f.json" "not [x for x in j[\"findings\"] if x[\"kind\"] in (\"bad-unlock\", \"bad-destroy\")]" || return 1
	done
'

L_RW_TWICE=$(grep -n "MISUSE: rw once too often" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_RW_NEVER=$(grep -n "MISUSE: rw never locked" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_RW_OTHER=$(grep -n "MISUSE: rw another thread" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_RW_HELD=$(grep -n "MISUSE: rw destroyed held" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_SPIN_TWICE=$(grep -n "MISUSE: spin once too often" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_SPIN_OTHER=$(grep -n "MISUSE: spin another thread" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_SPIN_HELD=$(grep -n "MISUSE: spin destroyed held" "$FIXTURES/locks_cases.c" | cut -d: -f1)
L_NEVER=$(grep -n "MISUSE: never locked" "$FIXTURES/locks_cases.c" | cut -d: -f1)
# held TYPE HELD_FOR HOLDER: the misuse finding's lock type, how its holder
# held it (a Python value) and whether it names one
held() {
	echo "[(f[\"details\"][\"lock_type\"], f[\"details\"].get(\"held_for\"), f[\"details\"].get(\"holder\", 0) > 0) for f in j[\"findings\"] if f[\"kind\"] in (\"bad-unlock\", \"bad-destroy\")] == [(\"$1\", $2, $3)]"
}
no_misuse="not [f for f in j[\"findings\"] if f[\"kind\"] in (\"bad-unlock\", \"bad-destroy\")]"

test_expect 'an rwlock unlocked twice, never locked, by a thread other than its writer or its reader, destroyed while held for reading or writing: each found where it was done, with its holder' '
	run_case rwunlock2 && json_check t.log.json "$(misuse bad-unlock "$L_RW_TWICE")" &&
	json_check t.log.json "$(held rwlock None False)" &&
	grep -q "which no thread held" t.log.json &&
	run_case rwnever && json_check t.log.json "$(misuse bad-unlock "$L_RW_NEVER")" &&
	run_case rwwriter && json_check t.log.json "$(misuse bad-unlock "$L_RW_OTHER")" &&
	json_check t.log.json "$(held rwlock "\"writing\"" True)" &&
	run_case rwreader && json_check t.log.json "$(misuse bad-unlock "$L_RW_OTHER")" &&
	json_check t.log.json "$(held rwlock "\"reading\"" True)" &&
	grep -q "which it did not hold" t.log.json &&
	run_case rwdestroyr && json_check t.log.json "$(misuse bad-destroy "$L_RW_HELD")" &&
	json_check t.log.json "$(held rwlock "\"reading\"" True)" &&
	run_case rwdestroyw && json_check t.log.json "$(misuse bad-destroy "$L_RW_HELD")" &&
	json_check t.log.json "$(held rwlock "\"writing\"" True)"
'

test_expect 'rwlocks and spin locks used by their rules (a read lock taken twice, readers side by side, a writer, a tryrdlock, destroyed once free; a read lock given back by a thread-specific data destructor): no bad-unlock, no bad-destroy' '
	for c in rwok rwtls rdrd rdwr spin; do
		run_case $c && json_check t.log.json "$no_misuse" || return 1
	done
'

test_expect 'rwfork: an rwlock write-locked in a pthread_atfork prepare handler and unlocked in the fork child is a bad-unlock there (the child then cannot take it); made anew in the child, or read-locked: nothing' '
	"$CASES" rwfork >plain.out && grep -qx "child wrlock: timed out" plain.out &&
	SPY_OPTIONS=out=$PWD/f.%p.log LD_PRELOAD=$LIBSPY "$CASES" rwfork >out &&
	cmp plain.out out && test "$(ls f.*.log | wc -l)" = 2 &&
	for f in f.*.log; do
		"$ANALYZE" report --json "$f" >"$f.json"; test $? -le 1 || return 1
	done &&
	test "$(grep -l "in a fork child" f.*.log.json | wc -l)" = 1 &&
	json_check "$(grep -l "in a fork child" f.*.log.json)" "[(f[\"kind\"], f[\"details\"][\"held_for\"], f[\"stacks\"][0][\"frames\"][0][\"function\"]) for f in j[\"findings\"]] == [(\"bad-unlock\", \"writing\", \"rw_child\")]" &&
	for c in rwforkfixed rdfork; do
		rm -f f.*.log* &&
		"$CASES" $c >plain.out && grep -qx "child wrlock: ok" plain.out &&
		SPY_OPTIONS=out=$PWD/f.%p.log LD_PRELOAD=$LIBSPY "$CASES" $c >out &&
		cmp plain.out out && test "$(ls f.*.log | wc -l)" = 2 &&
		for f in f.*.log; do
			"$ANALYZE" report --json "$f" >"$f.json"; test $? -le 1 &&
			json_check "$f.json" "$no_misuse" || return 1
		done || return 1
	done
'

test_expect 'a spin lock unlocked twice, by another thread, destroyed while locked; a mutex unlocked but never locked: each found where it was done' '
	run_case spin2 && json_check t.log.json "$(misuse bad-unlock "$L_SPIN_TWICE")" &&
	json_check t.log.json "$(held spin None False)" &&
	run_case spinother && json_check t.log.json "$(misuse bad-unlock "$L_SPIN_OTHER")" &&
	json_check t.log.json "$(held spin None True)" &&
	run_case spindestroy && json_check t.log.json "$(misuse bad-destroy "$L_SPIN_HELD")" &&
	run_case unlocknever && json_check t.log.json "$(misuse bad-unlock "$L_NEVER")" &&
	json_check t.log.json "$(held mutex None False)"
'

test_expect 'self: relocking a normal mutex one holds is a one-thread deadlock' '
	rc=0 &&
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$CASES" self >out 2>err || rc=$? &&
	say "status $rc" && test $rc -eq 86 &&
	grep -q "which it holds itself" err
'

test_expect 'timed: two threads timing out on each other are no deadlock' '
	SPY_OPTIONS=out=$PWD/t.log timeout 20 env LD_PRELOAD=$LIBSPY "$CASES" timed >out 2>err &&
	grep -q "timed done" out && ! grep -q deadlock err &&
	{ "$ANALYZE" report --json t.log >t.log.json; test $? -le 1; } &&
	json_check t.log.json "$(none)"
'

test_expect 'a hot loop of lock/unlock pairs: every pair counted, the trace stays small' '
	gcc -std=gnu11 -O2 -g -pthread -o lb "$TOP/bench/lock_bench.c" &&
	SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./lb sep 300000 >out &&
	"$ANALYZE" locks --json t.log >l.json &&
	json_check l.json "sorted((l[\"name\"], l[\"acquisitions\"]) for l in j[\"locks\"]) == [(\"w[0].own\", 300000), (\"w[1].own\", 300000)]" &&
	size=$(wc -c <t.log) && say "trace $size bytes" && test "$size" -lt 1000000 &&
	json_check l.json "[l[\"hold_estimated\"] for l in j[\"locks\"]] == [True, True]" &&
	json_check l.json "all(0 < l[\"hold_max_ns\"] <= l[\"hold_total_ns\"] for l in j[\"locks\"])" &&
	"$ANALYZE" locks t.log >l.txt &&
	grep -q "^~ hold times estimated" l.txt
'

test_expect 'paced: pairs far apart are all timed, the hold times are exact' '
	run_case paced &&
	"$ANALYZE" locks --json t.log >l.json && "$ANALYZE" locks t.log >l.txt &&
	json_check l.json "[(l[\"name\"], l[\"acquisitions\"], l[\"hold_estimated\"]) for l in j[\"locks\"]] == [(\"A\", 300, False)]" &&
	! grep -q "~" l.txt
'

test_expect 'runnest: a lock nested inside a hot loop of pairs is still an edge, all counted' '
	run_case runnest &&
	json_check t.log.json "$(cycles error) == 1" &&
	"$ANALYZE" locks --json t.log >l.json &&
	json_check l.json "sorted((l[\"name\"], l[\"acquisitions\"]) for l in j[\"locks\"]) == [(\"A\", 2001), (\"B\", 21)]" &&
	{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -le 1; } &&
	json_check g.json "len(j[\"edges\"]) == 2"
'

# A program without symbols or lines: the first frame with a line was
# inside libc (pthread_create.c, the start of main), which named every
# lock after a place the program never wrote.
cat >"$TEST_DIR/wrapped.c" <<'CEOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Accounts made through an allocation wrapper and locked through a lock
 * wrapper, each from two callers; a pair of locks on the stack, taken
 * through the wrapper too. Two transfers in opposite orders: a cycle. */
struct account { long balance; pthread_mutex_t m; };

static void *xmalloc(size_t n)
{
	void *p = malloc(n);   /* XMALLOC */
	if (!p)
		abort();
	return p;
}

static void take(pthread_mutex_t *m) { pthread_mutex_lock(m); /* TAKE */ }
static void drop(pthread_mutex_t *m) { pthread_mutex_unlock(m); }

static struct account *open_savings(void)
{
	struct account *a = xmalloc(sizeof *a);   /* SAVINGS */
	a->balance = 100;
	pthread_mutex_init(&a->m, NULL);
	return a;
}

static struct account *open_checking(void)
{
	struct account *a = xmalloc(sizeof *a);   /* CHECKING */
	a->balance = 50;
	pthread_mutex_init(&a->m, NULL);
	return a;
}

static void transfer(struct account *from, struct account *to, long n)
{
	take(&from->m);
	take(&to->m);
	from->balance -= n;
	to->balance += n;
	drop(&to->m);
	drop(&from->m);
}

int main(void)
{
	struct account *s = open_savings(), *c = open_checking();
	transfer(s, c, 10);   /* S_THEN_C */
	transfer(c, s, 5);    /* C_THEN_S */
	pthread_mutex_t pair[2] = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER };
	take(&pair[0]);       /* FIRST_OF_PAIR */
	take(&pair[1]);       /* SECOND_OF_PAIR */
	drop(&pair[1]);
	drop(&pair[0]);
	printf("%ld %ld\n", s->balance, c->balance);
	return 0;
}
CEOF

test_expect 'locks taken and blocks allocated through wrappers are named after their callers' '
	gcc -std=gnu11 -O0 -g -pthread -o wrapped "$TEST_DIR/wrapped.c" &&
	SPY_OPTIONS=out=$PWD/w.log LD_PRELOAD=$LIBSPY ./wrapped >out && grep -qx "95 55" out &&
	{ "$ANALYZE" lock-graph --json w.log >w.json; test $? -le 1; } &&
	line() { grep -n "$1" "$TEST_DIR/wrapped.c" | cut -d: -f1; } &&
	json_check w.json "sorted(l[\"name\"].split(\" allocated at \")[-1] for l in j[\"locks\"] if \"allocated at\" in l[\"name\"]) == sorted([\"wrapped.c:$(line CHECKING)\", \"wrapped.c:$(line SAVINGS)\"])" &&
	json_check w.json "sorted(l[\"name\"] for l in j[\"locks\"] if \"first taken at\" in l[\"name\"]) == [\"the lock first taken at wrapped.c:$(line FIRST_OF_PAIR)\", \"the lock first taken at wrapped.c:$(line SECOND_OF_PAIR)\"]"
'

test_expect 'a stripped program: its locks are named by its own code, not a line inside libc' '
	gcc -std=gnu11 -O0 -g0 -s -pthread -o lcs "$FIXTURES/locks_cases.c" &&
	for c in abba reuse; do
		rm -f t.log &&
		SPY_OPTIONS=out=$PWD/t.log:quarantine_mb=0 LD_PRELOAD=$LIBSPY ./lcs $c >out &&
		{ "$ANALYZE" lock-graph --json t.log >g.json; test $? -le 1; } &&
		json_check g.json "len(j[\"locks\"]) >= 2" &&
		json_check g.json "all(__import__(\"re\").search(r\"(taken|allocated) at lcs\+0x[0-9a-f]+( \(#2\))?$\", l[\"name\"]) for l in j[\"locks\"])" || return 1
	done
'

if command -v g++ >/dev/null 2>&1; then
	test_expect 'C++ std::mutex through lock_guard: the ABBA cycle, named' '
		g++ -O0 -g -pthread -o cxx "$FIXTURES/locks_cxx.cc" &&
		SPY_OPTIONS=out=$PWD/t.log LD_PRELOAD=$LIBSPY ./cxx >out &&
		grep -q "cxx done" out &&
		{ "$ANALYZE" report --json t.log >t.log.json; test $? -eq 1; } &&
		json_check t.log.json "[sorted(f[\"details\"][\"cycle\"][\"locks\"]) for f in j[\"findings\"] if f[\"severity\"] == \"error\"] == [[\"first\", \"second\"]]"
	'
else
	test_skip 'C++ std::mutex through lock_guard' 'no g++'
fi

test_done
