#!/bin/bash
# t400: threads: every way a thread ends is recorded with its costs, the
# scheduling_tax demo is flagged as a thread-storm at its pthread_create
# line, and the event-loop variant (and a small run) is not.
. "$(dirname "$0")/lib.sh"

DEMOS=$TOP/demos

cat >ends.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *returns(void *a) { return a; }
static void *exits(void *a) { pthread_exit(a); }
static void *waits(void *a) { for (;;) sleep(1); return a; }
int main(void)
{
	pthread_t t[3];
	pthread_create(&t[0], NULL, returns, NULL);
	pthread_create(&t[1], NULL, exits, NULL);
	pthread_create(&t[2], NULL, waits, NULL);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	pthread_cancel(t[2]);
	pthread_join(t[2], NULL);
	puts("three threads ended");
	return 0;
}
EOF
cat >cloner.c <<'EOF'
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
static int child(void *arg) { return arg != NULL; }
int main(void)
{
	char *stack = malloc(1 << 16);
	int pid = clone(child, stack + (1 << 16), SIGCHLD, NULL);
	int status = -1;
	waitpid(pid, &status, 0);
	printf("cloned, child status %d\n", WEXITSTATUS(status));
	return 0;
}
EOF
cat >busy.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <time.h>
/* 400 short threads, 4 at a time, that only compute (about 1 ms of CPU
 * each) and never block: a storm, but not of waiting threads. */
static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}
static void *compute(void *a)
{
	volatile unsigned long x = 0;
	double t0 = cpu();
	while (cpu() - t0 < 0.001)
		for (int i = 0; i < 1000; i++)
			x += i;
	return a;
}
int main(void)
{
	for (int r = 0; r < 100; r++) {
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, compute, NULL);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	}
	puts("400 threads computed");
	return 0;
}
EOF
cat >sleepers.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <time.h>
/* 1000 threads at once, each sleeping 2 ms: a storm of waiting threads
 * with no lock between them (scheduling_tax's mutex convoy stretches
 * lifetimes on a loaded machine; this keeps them short). */
static void *nap(void *a)
{
	struct timespec t = { 0, 2000000 };
	nanosleep(&t, NULL);
	return a;
}
int main(void)
{
	static pthread_t t[1000];
	for (int i = 0; i < 1000; i++)
		pthread_create(&t[i], NULL, nap, NULL);
	for (int i = 0; i < 1000; i++)
		pthread_join(t[i], NULL);
	puts("1000 threads slept");
	return 0;
}
EOF
cat >naps.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <time.h>
/* 3000 threads one after the other, each sleeping 0.2 ms: short lives,
 * of which libspy reads the run-queue delay of a sample only. */
static void *nap(void *a)
{
	struct timespec t = { 0, 200000 };
	nanosleep(&t, NULL);
	return a;
}
int main(void)
{
	for (int i = 0; i < 3000; i++) {
		pthread_t t;
		pthread_create(&t, NULL, nap, NULL);
		pthread_join(t, NULL);
	}
	puts("3000 naps");
	return 0;
}
EOF
cat >pool.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <time.h>
/* A pool never joined: 2 workers compute about 150 ms each, 150 idle
 * ones wait; then the process ends with every one still running. */
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static int finished;
static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}
static void *work(void *a)
{
	volatile unsigned long x = 0;
	double t0 = cpu();
	while (cpu() - t0 < 0.15)
		for (int i = 0; i < 1000; i++)
			x += i;
	pthread_mutex_lock(&m);
	finished++;
	pthread_cond_signal(&done);
	for (;;)
		pthread_cond_wait(&c, &m);
	return a;
}
static void *idle(void *a)
{
	pthread_mutex_lock(&m);
	for (;;)
		pthread_cond_wait(&c, &m);
	return a;
}
int main(void)
{
	pthread_t t;
	for (int i = 0; i < 2; i++)
		pthread_create(&t, NULL, work, NULL);
	for (int i = 0; i < 150; i++)
		pthread_create(&t, NULL, idle, NULL);
	pthread_mutex_lock(&m);
	while (finished < 2)
		pthread_cond_wait(&done, &m);
	pthread_mutex_unlock(&m);
	puts("pool left running");
	return 0;
}
EOF
cat >spin.c <<'EOF'
int main(void) { for (volatile unsigned long i = 0;; i++) ; }
EOF
gcc -std=gnu11 -O1 -o "$TEST_DIR/spin" spin.c &&
gcc -std=gnu11 -O1 -g -pthread -o "$TEST_DIR/busy" busy.c &&
gcc -std=gnu11 -O1 -g -pthread -o "$TEST_DIR/sleepers" sleepers.c &&
gcc -std=gnu11 -O1 -g -pthread -o "$TEST_DIR/naps" naps.c &&
gcc -std=gnu11 -O1 -g -pthread -o "$TEST_DIR/pool" pool.c &&
gcc -std=gnu11 -O1 -g -o "$TEST_DIR/cloner" cloner.c &&
gcc -std=gnu11 -O1 -g -pthread -o "$TEST_DIR/ends" ends.c ||
	{ echo "Bail out! cannot build the test program"; exit 1; }

test_expect 'a return, a pthread_exit and a cancellation are told apart' '
	SPY_OPTIONS=out=t.log traced "$TEST_DIR/ends" >out &&
	grep -x "three threads ended" out &&
	"$ANALYZE" threads --json t.log >th.json &&
	json_check th.json "sorted((t[\"start_routine\"], t[\"end\"]) for t in j[\"threads\"] if t[\"start_routine\"]) == [(\"exits\", \"pthread_exit\"), (\"returns\", \"return\"), (\"waits\", \"cancelled\")]" &&
	json_check th.json "all(t[\"lifetime_ns\"] > 0 and t[\"stack_size\"] > 0 and t[\"creator\"] > 0 for t in j[\"threads\"] if t[\"start_routine\"])" &&
	json_check th.json "j[\"process_totals\"][\"threads_created\"] == 3 and j[\"process_totals\"][\"peak_live_threads\"] >= 2"
'

# Threads still running when the process ends wrote no end of their own:
# their rows said 0 ms of life and of CPU, however long they had worked.
test_expect 'a pool still running at exit: each thread'"'"'s life and CPU, and no thread-storm' '
	same_output pool "$TEST_DIR/pool" &&
	set -- traced/trace.*.log && test $# = 1 &&
	"$ANALYZE" threads --json "$1" >th.json &&
	json_check th.json "sorted(t[\"end\"] for t in j[\"threads\"] if t[\"start_routine\"] == \"work\") == [\"at exit\", \"at exit\"]" &&
	json_check th.json "all(t[\"lifetime_ns\"] > 100e6 and t[\"user_ns\"] + t[\"system_ns\"] >= 50e6 for t in j[\"threads\"] if t[\"start_routine\"] == \"work\")" &&
	json_check th.json "len([t for t in j[\"threads\"] if t[\"start_routine\"] == \"idle\" and t[\"end\"] == \"at exit\" and t[\"lifetime_ns\"] > 0]) == 150" &&
	report_json "$1" r.json &&
	json_check r.json "\"thread-storm\" not in [f[\"kind\"] for f in j[\"findings\"]]"
'

test_expect 'scheduling_tax: output and status unchanged under libspy' '
	"$DEMOS/scheduling_tax" 300 >plain.out &&
	SPY_OPTIONS=out=st.log traced "$DEMOS/scheduling_tax" 300 >traced.out &&
	head -n 1 plain.out >p1 && head -n 1 traced.out >t1 && cmp p1 t1
'

create_line=$(grep -n "pthread_create(&threads" "$DEMOS/scheduling_tax.c" | cut -d: -f1)
test_expect 'scheduling_tax: thread-storm at the pthread_create line, with its costs' '
	SPY_OPTIONS=out=st.log traced "$DEMOS/scheduling_tax" >/dev/null &&
	report_json st.log st.log.r.json &&
	json_check st.log.r.json "[f[\"kind\"] for f in j[\"findings\"]].count(\"thread-storm\") == 1" &&
	json_check st.log.r.json "[f for f in j[\"findings\"] if f[\"kind\"] == \"thread-storm\"][0][\"details\"][\"threads\"] == 2000" &&
	json_check st.log.r.json "[(fr[\"file\"].split(\"/\")[-1], fr[\"function\"], fr[\"line\"]) for f in j[\"findings\"] if f[\"kind\"] == \"thread-storm\" for fr in f[\"stacks\"][0][\"frames\"][:1]] == [(\"scheduling_tax.c\", \"main\", $create_line)]" &&
	json_check st.log.r.json "all([f for f in j[\"findings\"] if f[\"kind\"] == \"thread-storm\"][0][\"details\"][k] > 0 for k in (\"voluntary_switches\", \"stack_reserved_at_peak\", \"create_ns\", \"peak_live_threads\"))" &&
	"$ANALYZE" sched --json st.log >sched.json &&
	json_check sched.json "j[\"threads_created\"] == 2000 and j[\"context_switches\"] > 0"
'

test_expect 'scheduling_tax_fixed (one event loop): no thread-storm' '
	SPY_OPTIONS=out=fx.log traced "$DEMOS/scheduling_tax_fixed" >out &&
	grep "handled by 1 thread" out &&
	report_json fx.log fx.log.r.json &&
	json_check fx.log.r.json "\"thread-storm\" not in [f[\"kind\"] for f in j[\"findings\"]]"
'

test_expect 'fifty threads stay under the storm threshold' '
	SPY_OPTIONS=out=small.log traced "$DEMOS/scheduling_tax" 50 >/dev/null &&
	report_json small.log small.log.r.json &&
	json_check small.log.r.json "\"thread-storm\" not in [f[\"kind\"] for f in j[\"findings\"]]"
'

# loaded CMD...: runs CMD while two spinning processes per CPU keep every
# CPU busy, so that the program's threads queue for a CPU.
loaded() {
	local pids="" i rc=0
	for i in $(seq 1 $((2 * $(nproc)))); do
		"$TEST_DIR/spin" &
		pids="$pids $!"
	done
	"$@" || rc=$?
	kill $pids
	wait $pids 2>/dev/null
	return $rc
}

# storm_detail JSON KEY: the thread-storm finding's detail KEY, in Python.
storm_detail() { echo "[f for f in j[\"findings\"] if f[\"kind\"] == \"thread-storm\"][0][\"details\"][\"$1\"]"; }
storm_text='[f for f in j["findings"] if f["kind"] == "thread-storm"][0]["explanation"]'

test_expect 'on a loaded machine: a thousand sleeping threads are still a thread-storm' '
	loaded env SPY_OPTIONS=out=ld.log LD_PRELOAD=$LIBSPY "$TEST_DIR/sleepers" >out &&
	grep -x "1000 threads slept" out &&
	report_json ld.log ld.log.r.json &&
	json_check ld.log.r.json "[f[\"kind\"] for f in j[\"findings\"]].count(\"thread-storm\") == 1" &&
	json_check ld.log.r.json "$(storm_detail waiting_threads) >= 900"
'

test_expect 'on a loaded machine: short threads that only compute are no storm of waiting threads' '
	loaded env SPY_OPTIONS=out=bz.log LD_PRELOAD=$LIBSPY "$TEST_DIR/busy" >out &&
	grep -x "400 threads computed" out &&
	"$ANALYZE" threads --json bz.log >bz.json &&
	json_check bz.json "len([t for t in j[\"threads\"] if t[\"start_routine\"] == \"compute\"]) == 400" &&
	report_json bz.log bz.log.r.json &&
	json_check bz.log.r.json "\"thread-storm\" not in [f[\"kind\"] for f in j[\"findings\"]]"
'

test_expect 'run-queue delay: short threads are sampled, and the finding says it is an estimate' '
	SPY_OPTIONS=out=st.log traced "$TEST_DIR/naps" >out &&
	grep -x "3000 naps" out &&
	report_json st.log st.log.r.json &&
	json_check st.log.r.json "1 <= $(storm_detail runqueue_threads_measured) < 1500" &&
	json_check st.log.r.json "\"estimated from\" in $storm_text" &&
	SPY_OPTIONS=out=ns.log:thread_sched=0 traced "$TEST_DIR/naps" >/dev/null &&
	report_json ns.log ns.log.r.json &&
	json_check ns.log.r.json "$(storm_detail runqueue_threads_measured) == 0" &&
	json_check ns.log.r.json "\"not measured\" in $storm_text" &&
	"$ANALYZE" sched st.log >st.sched && "$ANALYZE" sched --json st.log >st.sched.json &&
	grep -q "estimated from [0-9]* of [0-9]* threads" st.sched &&
	json_check st.sched.json "j[\"runqueue_estimated\"] and 1 <= j[\"runqueue_threads_measured\"] < j[\"runqueue_threads_ended\"]" &&
	"$ANALYZE" threads st.log | grep -q "^\"-\" under runq wait" &&
	"$ANALYZE" sched ns.log | grep -q "run queue  not measured"
'

# The sample's readings as the trace has them: the naps last 0.6 s at
# least, so readings at the start, after 10 ms and after 20 more are
# certain; the gap after each doubles up to 100 ms, so their count stays
# within what the trace's own span allows (one every 10 ms gave ten times
# as many). The slack covers a reading's own time between its decision
# and its record.
test_expect 'run-queue delay: the sample of short threads thins out as the run goes on' '
	SPY_OPTIONS=out=st.log traced "$TEST_DIR/naps" >/dev/null &&
	"$ANALYZE" threads --json st.log >st.threads.json &&
	python3 - st.threads.json <<-PY
	import json, sys
	ts = [t for t in json.load(open(sys.argv[1]))["threads"]
	      if t["start_routine"] == "nap" and t["lifetime_ns"] < 100000000]
	read = sorted(t["ended_ns"] for t in ts if t["runqueue_measured"])
	span = max(t["ended_ns"] for t in ts) - min(t["ended_ns"] for t in ts)
	allowed, gap, at = 1, 10000000, 0
	while at + gap <= span + 20000000:
	    at += gap
	    allowed += 1
	    gap = min(2 * gap, 100000000)
	print("read", len(read), "of", len(ts), "in", span // 1000000, "ms; allowed", allowed + 1)
	sys.exit(0 if len(ts) > 2000 and 3 <= len(read) <= allowed + 1 else 1)
	PY
'

test_expect 'analyze threads prints one row per thread and the totals' '
	SPY_OPTIONS=out=t.log traced "$TEST_DIR/ends" >/dev/null &&
	"$ANALYZE" threads t.log >th.txt &&
	grep -c " returns " th.txt && grep " waits .* cancelled$" th.txt &&
	grep "^process: 3 threads created" th.txt
'

test_expect 'analyze threads explains every word of its column heads in a legend' '
	SPY_OPTIONS=out=t.log traced "$TEST_DIR/ends" >/dev/null &&
	"$ANALYZE" threads t.log >th.txt &&
	python3 - th.txt <<-PY
	import re, sys
	lines = open(sys.argv[1]).read().split("\n")
	heads = set(w for l in lines if l.startswith("tid ") for w in l.split())
	terms = [l[8:24] for l in lines[lines.index(next(l for l in lines if l.startswith("legend: "))):]]
	terms = terms[:next(i for i, t in enumerate(terms) if not t.strip())]
	said = set(w for t in terms for w in re.split("[ /]", t) if w)
	print("heads", sorted(heads), "legend", sorted(said))
	sys.exit(0 if heads and heads <= said else 1)
	PY
'

test_expect 'the summary says which context switches it counts, and the threads view the same' '
	SPY_OPTIONS=out=cs.log traced "$TEST_DIR/ends" >/dev/null &&
	"$ANALYZE" summary cs.log >cs.txt && "$ANALYZE" threads cs.log >cs.th &&
	tr -s "\n " " " <cs.txt >cs.line && tr -s "\n " " " <cs.th >cs.th.line &&
	grep "machine .* context switches: [0-9]* voluntary, [0-9]* involuntary;" cs.line &&
	grep "page faults: [0-9]* minor, [0-9]* major" cs.line &&
	! grep "[0-9] + [0-9]" cs.line &&
	grep "process: .* context switches: [0-9]* voluntary, [0-9]* involuntary; page faults: [0-9]* minor, [0-9]* major" cs.th.line
'

# exec keeps the thread's and the process's counts: what the shell spent
# before "exec" is not the program's.
test_expect 'a program exec'\''d after a busy shell: its CPU, switches and faults are its own' '
	SPY_OPTIONS=out=$PWD/ex.%p.%e.log LD_PRELOAD=$LIBSPY sh -c "i=0; while [ \$i -lt 300000 ]; do i=\$((i+1)); done; exec \"$TEST_DIR/ends\"" >/dev/null &&
	t=$(ls ex.*.ends.log) &&
	"$ANALYZE" threads --json "$t" >ex.json &&
	json_check ex.json "(j[\"process_totals\"][\"user_ns\"] + j[\"process_totals\"][\"system_ns\"] < 100e6 and
		all(t[\"user_ns\"] + t[\"system_ns\"] < 100e6 for t in j[\"threads\"]) and
		j[\"process_totals\"][\"minor_faults\"] < 5000)"
'

test_expect 'a program that calls clone itself: output unchanged, the call recorded' '
	"$TEST_DIR/cloner" >plain.out &&
	SPY_OPTIONS=out=c.log traced "$TEST_DIR/cloner" >traced.out &&
	cmp plain.out traced.out &&
	"$ANALYZE" dump --json c.log >d.json &&
	json_check d.json "[e[\"kind\"] for e in j].count(\"clone\") == 1"
'

# Short threads one after another: in the merged trace each thread's start
# and end fall between its creation and the next one. A record stamped
# early (a chunk's time base read while the reading was interrupted, a
# rate measured from such a reading) puts a thread before its creation.
cat >serial.c <<'EOF'
#include <pthread.h>
#include <stdio.h>
static void *nothing(void *a) { return a; }
int main(void)
{
	for (int i = 0; i < 300; i++) {
		pthread_t t;
		pthread_create(&t, NULL, nothing, NULL);
		pthread_join(t, NULL);
	}
	puts("done");
	return 0;
}
EOF

# misordered TRACE: how many threads are not started and ended between
# their creation and the next creation.
misordered() {
	"$ANALYZE" dump "$1" | awk '$3 == "thread_create" { if (n && (s != 1 || e != 1)) bad++; n++; s = 0; e = 0 }
		$3 == "thread_start" { s++ } $3 == "thread_end" && n { e++ }
		END { print (n == 300 ? bad + 0 : "incomplete") }'
}

test_expect 'three hundred threads one after another: each starts and ends between its creation and the next (five runs)' '
	gcc -O2 -pthread -o serial "$TEST_DIR/serial.c" &&
	for i in 1 2 3 4 5; do
		rm -f s.log && SPY_OPTIONS=out=$PWD/s.log LD_PRELOAD=$LIBSPY ./serial >out &&
		grep -qx done out && m=$(misordered s.log) && say "run $i: $m misordered" &&
		test "$m" = 0 || return 1
	done
'

# The kernel's count of mappings per process (vm.max_map_count, 65530 by
# default): a thread takes two (its stack and guard page); libspy's
# alternate signal stack and first trace region took two more per thread,
# and a program with about 15,000 threads alive could create no more
# (20,000 without libspy). They now come from shared runs.
cat >"$TEST_DIR/mapcount.c" <<'EOF'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static pthread_barrier_t b;
static void *t(void *a)
{
	void *p = malloc(100);
	pthread_barrier_wait(&b);
	pthread_barrier_wait(&b);
	free(p);
	return a;
}
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;
	char line[512];
	while (fgets(line, sizeof line, f))
		n++;
	fclose(f);
	return n;
}
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	pthread_t *th = malloc(sizeof(pthread_t) * n);
	pthread_barrier_init(&b, NULL, n + 1);
	int before = count_maps();
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, t, NULL))
			return 1;
	pthread_barrier_wait(&b);
	int during = count_maps();
	pthread_barrier_wait(&b);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	printf("%d\n", (during - before) * 100 / n);
	return 0;
}
EOF

test_expect '1000 threads alive: libspy adds at most a tenth of a mapping per thread to the two each takes anyway' '
	gcc -O1 -pthread -o mapcount "$TEST_DIR/mapcount.c" &&
	plain=$(./mapcount 1000) &&
	traced=$(SPY_OPTIONS=out=$PWD/m.log LD_PRELOAD=$LIBSPY ./mapcount 1000) &&
	echo "per 100 threads: plain $plain, traced $traced" &&
	test "$traced" -le $((plain + 10)) &&
	"$ANALYZE" summary m.log | tr -s "\n " " " | grep -q "1000 threads created"
'

test_done
